/**
 * The one piece of MQTT framing written by hand here: the remaining length of a fixed header
 * (MQTT 3.1.1 §2.2.3). The load generators pre-frame their packets with it (a generic encoder per message
 * would be what they measure), and the gateway tests build packets mqtt-packet refuses to encode.
 */

/** `n` as 1–4 bytes of 7 bits, least significant first, the high bit set on all but the last. */
export function encodeLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
