//! Phones that dial and press keys: an INVITE (with the digest answer FreeSWITCH asks for)
//! followed by RFC 2833 telephone-events that sipp plays from a pcap file written here for
//! each call, and a phone that watches an Extension's lamp (SUBSCRIBE, NOTIFYs).
//!
//! The pcap is written per call rather than assembled from the per-digit recordings in
//! `sipp-pcap/`: every recording carries the same RTP timestamp and sequence numbers, and a
//! receiver drops an event that repeats them, so "1234" played from four recordings would not
//! arrive as four digits.

use std::path::Path;

use crate::harness::{Credentials, Outcome, Phone};

/// What the caller does after the call is answered.
#[derive(Debug, Clone)]
pub enum Key {
    /// Wait (milliseconds).
    Pause(u32),
    /// Press these keys (`0`–`9`, `*`, `#`), one after the other.
    Press(&'static str),
    /// Speak (milliseconds): a 440 Hz tone as PCMU audio, loud enough for silence detection.
    Speak(u32),
}

/// A 16-bit linear sample in G.711 µ-law.
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// The RTP payload type the scenario offers for telephone-event.
const EVENT_PAYLOAD_TYPE: u8 = 101;
/// How long a key is held (milliseconds) and the gap before the next one.
const KEY_MS: u32 = 160;
const GAP_MS: u32 = 240;

fn event_code(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        other => panic!("not a phone key: {other:?}"),
    }
}

/// Writes `keys` as a pcap of RTP telephone-events (RFC 4733), with the timing sipp replays.
pub fn write_pcap(path: &Path, keys: &[Key]) {
    let mut out = Vec::new();
    // Global header: little-endian, version 2.4, snaplen 65535, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());

    // Not at 0: sipp takes a zero capture time for "no packet yet" and would not wait after it.
    let mut now_ms: u32 = 1000;
    let mut seq: u16 = 1000;
    let mut packet =
        |at_ms: u32, payload_type: u8, marker: bool, timestamp: u32, payload: &[u8]| {
            let mut rtp = vec![0x80, payload_type | if marker { 0x80 } else { 0 }];
            rtp.extend_from_slice(&seq.to_be_bytes());
            rtp.extend_from_slice(&timestamp.to_be_bytes());
            rtp.extend_from_slice(&0x5eed_d7f1_u32.to_be_bytes());
            rtp.extend_from_slice(payload);
            seq = seq.wrapping_add(1);
            let udp_len = 8 + rtp.len();
            let ip_len = 20 + udp_len;
            let mut frame = Vec::with_capacity(14 + ip_len);
            frame.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&(ip_len as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
            let checksum = !ip
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .fold(0u32, |sum, w| {
                    let s = sum + w;
                    (s & 0xffff) + (s >> 16)
                }) as u16;
            ip[10..12].copy_from_slice(&checksum.to_be_bytes());
            frame.extend_from_slice(&ip);
            frame.extend_from_slice(&6000u16.to_be_bytes());
            frame.extend_from_slice(&6000u16.to_be_bytes());
            frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&rtp);
            out.extend_from_slice(&(at_ms / 1000).to_le_bytes());
            out.extend_from_slice(&((at_ms % 1000) * 1000).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        };
    // sipp replays relative to the first packet: one frame of silence (PCMU) at the start keeps
    // a leading pause.
    packet(now_ms, 0, false, 0, &[0xff; 160]);
    now_ms += 20;
    for key in keys {
        match key {
            Key::Pause(ms) => now_ms += ms,
            Key::Speak(ms) => {
                for _ in 0..ms / 20 {
                    let first = now_ms * 8;
                    let audio: Vec<u8> = (first..first + 160)
                        .map(|n| {
                            let phase = f64::from(n) * 440.0 * std::f64::consts::TAU / 8000.0;
                            ulaw((phase.sin() * 8000.0) as i16)
                        })
                        .collect();
                    packet(now_ms, 0, false, first, &audio);
                    now_ms += 20;
                }
            }
            Key::Press(keys) => {
                for key in keys.chars() {
                    let code = event_code(key);
                    // One event: a timestamp of its own, a packet every 20 ms with the
                    // growing duration, then the end three times.
                    let timestamp = now_ms * 8;
                    let steps = KEY_MS / 20;
                    for step in 1..=steps {
                        let duration = (step * 160) as u16;
                        let d = duration.to_be_bytes();
                        packet(
                            now_ms,
                            EVENT_PAYLOAD_TYPE,
                            step == 1,
                            timestamp,
                            &[code, 10, d[0], d[1]],
                        );
                        now_ms += 20;
                    }
                    let d = ((steps * 160) as u16).to_be_bytes();
                    for _ in 0..3 {
                        packet(
                            now_ms,
                            EVENT_PAYLOAD_TYPE,
                            false,
                            timestamp,
                            &[code, 0x80 | 10, d[0], d[1]],
                        );
                    }
                    now_ms += GAP_MS;
                }
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

impl Phone {
    /// Dials `number` as `c` and, once answered, presses `keys`; then waits (up to
    /// `timeout_secs`) for FreeSWITCH to hang up and answers its BYE.
    pub async fn dial_and_press(
        &self,
        c: &Credentials,
        number: &str,
        keys: &[Key],
        timeout_secs: u32,
    ) -> Outcome {
        self.press(c, number, keys, timeout_secs * 1000, timeout_secs)
            .await
    }

    /// Dials `number` as `c` and, once answered, presses `keys`; hangs up after
    /// `hang_up_after_ms` unless the other side did first.
    pub async fn dial_press_and_hang_up(
        &self,
        c: &Credentials,
        number: &str,
        keys: &[Key],
        hang_up_after_ms: u32,
    ) -> Outcome {
        self.press(
            c,
            number,
            keys,
            hang_up_after_ms,
            hang_up_after_ms / 1000 + 30,
        )
        .await
    }

    async fn press(
        &self,
        c: &Credentials,
        number: &str,
        keys: &[Key],
        hang_up_after_ms: u32,
        timeout_secs: u32,
    ) -> Outcome {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let pcap = self.dir.join(format!("{id}.pcap"));
        write_pcap(&pcap, keys);
        let template =
            std::fs::read_to_string(Path::new(crate::harness::SIPP_DIR).join("dial_and_press.xml"))
                .unwrap();
        let scenario = self.dir.join(format!("{id}.xml"));
        std::fs::write(
            &scenario,
            template
                .replace("PCAP_FILE", pcap.to_str().unwrap())
                .replace("HANG_UP_AFTER_MS", &hang_up_after_ms.to_string()),
        )
        .unwrap();
        let media_port = crate::harness::free_port().to_string();
        self.run_for(
            scenario.to_str().unwrap(),
            &[
                ("user", &c.user),
                ("domain", &c.realm),
                ("number", number),
                ("ua", &self.user_agent),
            ],
            &["-au", &c.user, "-ap", &c.password, "-mp", &media_port],
            timeout_secs,
        )
        .await
    }
}

/// Whether sipp saw the call answered (a 200 to its INVITE) and FreeSWITCH hang it up (BYE).
pub fn answered_and_hung_up(outcome: &Outcome) -> bool {
    let received = crate::harness::received(&outcome.messages);
    received
        .iter()
        .any(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE"))
        && received.iter().any(|m| m.starts_with("BYE "))
}

impl Phone {
    /// Watches Extension `number`'s lamp as `c` until no NOTIFY has come for `quiet_ms`;
    /// returns what sipp saw (the NOTIFYs are in [`notify_bodies`]).
    pub async fn watch(&self, c: &Credentials, number: &str, quiet_ms: u32) -> Outcome {
        let template =
            std::fs::read_to_string(Path::new(crate::harness::SIPP_DIR).join("subscribe.xml"))
                .unwrap();
        let scenario = self
            .dir
            .join(format!("{}.xml", uuid::Uuid::new_v4().simple()));
        std::fs::write(
            &scenario,
            template.replace("QUIET_MS", &quiet_ms.to_string()),
        )
        .unwrap();
        self.run_for(
            scenario.to_str().unwrap(),
            &[
                ("user", &c.user),
                ("domain", &c.realm),
                ("watched", number),
                ("ua", &self.user_agent),
            ],
            &["-au", &c.user, "-ap", &c.password],
            quiet_ms / 1000 + 60,
        )
        .await
    }
}

/// The NOTIFY requests sipp received, in order.
pub fn notifies(outcome: &Outcome) -> Vec<&str> {
    crate::harness::received(&outcome.messages)
        .into_iter()
        .filter(|m| m.starts_with("NOTIFY "))
        .collect()
}

impl Phone {
    /// Calls `number@domain` as `c` with the From naming `from_domain`, answering the digest
    /// challenge with `password`; a call that is answered is hung up at once. The final answer
    /// is `last_status`.
    pub async fn place_call(
        &self,
        c: &Credentials,
        password: &str,
        from_domain: &str,
        domain: &str,
        number: &str,
    ) -> Outcome {
        let media_port = crate::harness::free_port().to_string();
        self.run_for(
            "call_answered_or_refused.xml",
            &[
                ("user", &c.user),
                ("from_domain", from_domain),
                ("domain", domain),
                ("number", number),
                ("ua", &self.user_agent),
            ],
            &["-au", &c.user, "-ap", password, "-mp", &media_port],
            30,
        )
        .await
    }
}
