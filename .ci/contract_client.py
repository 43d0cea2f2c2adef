"""Calls a running switchboard through the client openapi-python-client generated from its
served document: login, create a Domain, list with paging, and an expected error.

Usage: contract_client.py BASE_URL ADMIN_EMAIL ADMIN_PASSWORD (the client on PYTHONPATH as
`switchboard_client`). Exits non-zero on the first surprise.
"""

import sys
import uuid

from switchboard_client import AuthenticatedClient, Client
from switchboard_client.api.auth import login
from switchboard_client.api.domains import create_domain, get_domain, list_domains
from switchboard_client.api.me import me, sessions
from switchboard_client.models import (
    CreateDomainRequest,
    DomainDto,
    LoginRequest,
    PageResponseDomainDto,
    Problem,
    TokenResponse,
)


def check(condition, message):
    if not condition:
        sys.exit(f"contract check failed: {message}")


def main(base_url, email, password):
    # Undocumented statuses raise: the document must list every answer these calls get.
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    tokens = login.sync(client=anonymous, body=LoginRequest(email=email, password=password))
    check(isinstance(tokens, TokenResponse), f"login answered {tokens!r}")

    client = AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    who = me.sync(client=client)
    check(who is not None and who.user is not None and who.user.email == email, f"me: {who!r}")
    mine = sessions.sync(client=client)
    check(isinstance(mine, list) and any(s.current for s in mine), f"sessions: {mine!r}")

    run = uuid.uuid4().hex[:8]
    created = []
    for i in range(3):
        domain = create_domain.sync(
            client=client,
            body=CreateDomainRequest(
                name=f"Contract {run} {i}",
                sip_domain=f"c{i}-{run}.example.net",
                timezone="Europe/Berlin",
            ),
        )
        check(isinstance(domain, DomainDto), f"create answered {domain!r}")
        created.append(domain.id)

    seen = []
    cursor = None
    pages = 0
    while True:
        page = list_domains.sync(client=client, limit=2, cursor=cursor, q=run)
        check(isinstance(page, PageResponseDomainDto), f"list answered {page!r}")
        check(len(page.items) <= 2, f"a page of {len(page.items)} items for limit=2")
        seen.extend(d.id for d in page.items)
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
        check(pages < 10, "paging does not end")
    check(sorted(seen) == sorted(created), f"paging saw {seen}, created {created}")
    check(pages == 2, f"3 Domains at limit=2 took {pages} pages")

    missing = get_domain.sync_detailed(client=client, domain_id=uuid.uuid4())
    check(missing.status_code == 404, f"an unknown Domain answered {missing.status_code}")
    check(isinstance(missing.parsed, Problem), f"the 404 parsed as {missing.parsed!r}")
    check(missing.parsed.code == "not_found", f"the 404's code is {missing.parsed.code}")

    invalid = create_domain.sync_detailed(
        client=client,
        body=CreateDomainRequest(name="", sip_domain="not a domain", timezone="Mars/Olympus"),
    )
    check(invalid.status_code == 422, f"an invalid Domain answered {invalid.status_code}")
    check(isinstance(invalid.parsed, Problem), f"the 422 parsed as {invalid.parsed!r}")
    fields = {e.field for e in invalid.parsed.errors}
    check({"name", "sip_domain", "timezone"} <= fields, f"the 422 names {fields}")

    nobody = me.sync_detailed(client=anonymous)
    check(nobody.status_code == 401, f"me without a token answered {nobody.status_code}")
    print(f"generated client: login, create, {pages} pages, 404, 422 and 401 as documented")


if __name__ == "__main__":
    main(*sys.argv[1:4])
