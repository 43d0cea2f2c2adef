#!/usr/bin/env bash
# Generates switchboard's own prompts (freeswitch/sounds/switchboard/) with espeak-ng and sox,
# both from Debian: `apt-get install -y espeak-ng sox`.
#
# The files carry the names of FreeSWITCH's en-us-callie sound pack, so `switchboard_prompts`
# in conf/vars.xml can point at either set. Output: 8 kHz, mono, 16-bit PCM WAV, FreeSWITCH's
# native narrow-band rate (mod_sndfile resamples for wide-band calls).
#
# Run it again after changing a text below; commit the WAV files it writes.
set -euo pipefail
cd "$(dirname "$0")"
out=switchboard
voice=${VOICE:-en-us}
speed=${SPEED:-150}

prompts=(
  "ivr/ivr-please_enter_extension_followed_by_pound.wav|Please enter your extension, followed by pound."
  "ivr/ivr-please_enter_pin_followed_by_pound.wav|Please enter your PIN, followed by pound."
  "ivr/ivr-pin_or_extension_is-invalid.wav|The PIN or extension is invalid."
  "ivr/ivr-you_are_now_logged_in.wav|You are now logged in."
  "ivr/ivr-you_are_now_logged_out.wav|You are now logged out."
  "ivr/ivr-access_denied.wav|Access denied."
  "ivr/ivr-welcome.wav|Welcome. Please make your choice, or dial the extension you want."
  "ivr/ivr-please_make_a_choice.wav|Please make your choice."
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for entry in "${prompts[@]}"; do
  file=${entry%%|*}
  text=${entry#*|}
  mkdir -p "$out/$(dirname "$file")"
  espeak-ng -v "$voice" -s "$speed" -w "$tmp/raw.wav" "$text"
  # 8 kHz mono 16-bit, a little quieter than full scale, 150 ms of silence either side.
  sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$out/$file" gain -n -3 pad 0.15 0.15
  echo "$out/$file: $text"
done
