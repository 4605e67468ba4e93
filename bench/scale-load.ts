/**
 * One load-generator process of bench/scale.bench.ts (a process holds at most ~20,000 sockets, so 100,000
 * devices need several). Driven over IPC:
 *
 *   {cmd:'connect', port, from, n}                opens devices d{from}…d{from+n-1}; answers {ms, failed}
 *   {cmd:'traffic', rate, seconds, warmup}         QoS 1 motion events at `rate`/s spread round-robin over
 *                                                  its devices for warmup + seconds; answers {sent, acked,
 *                                                  p50, p99} of the events sent after the warm-up and
 *                                                  {warmP50, warmP99} of those sent during it, and
 *                                                  secondP99: the p99 of each second's events
 *   {cmd:'drop'}                                   closes every connection; answers once all are closed
 *   {cmd:'close'}                                  closes and exits
 */
import { BENCH_SECRET, LoadConn, percentile } from './gateway-load.ts';

let conns: LoadConn[] = [];
/** Which of `conns` have their CONNACK (a PINGREQ before the CONNECT is a protocol error). */
let connected: boolean[] = [];
const send = (m: unknown) => process.send?.(m);
const noop = () => {};

/**
 * Devices keep their session alive as real MQTT clients do (MQTT 3.1.1 §3.1.2.10): a PINGREQ only when
 * the device has sent nothing else for a minute (the CONNECT asks for a 300 s keepalive, and the broker
 * closes a connection silent for 1.5× that). At 5,000 events/s over 100,000 devices each device publishes
 * every 20 s and never pings, as with mqtt.js; a quiet one (the idle phase) pings every minute. Each device
 * checks at its own second of the minute, as devices that came online at different times do: a sixtieth
 * of them each second, not all of a generator's in one burst (20,000 PINGREQs at once held the gateways'
 * event loops, and a fall behind them, for a second). Measured, the PINGREQs the steady traffic no longer
 * sends (1,667/s) made no difference that the runs' spread shows.
 */
const PINGREQ = Buffer.from([0xc0, 0x00]);
const PING_AFTER_MS = 60_000;
let pingSecond = 0;
setInterval(() => {
  const second = pingSecond++ % 60;
  const now = performance.now();
  for (let i = second; i < conns.length; i += 60) {
    const c = conns[i];
    if (!c || !connected[i] || c.closed) continue;
    if (now - c.lastSent < PING_AFTER_MS - 1_000) continue;
    c.socket.write(PINGREQ);
    c.lastSent = now;
  }
}, 1_000).unref();

/**
 * The kernel picks each connection's source port in connect() (no bind to a source address first): an
 * explicit bind to a loopback source address searched the whole port space of that address on every
 * connect, ~1 ms of a core per connection at 10,000 connections (62 % of this generator's CPU while
 * connecting, taken from the gateways it measures). connect() picks a port free for the destination in
 * constant time, and on loopback reuses ports of connections closed in TIME_WAIT (tcp_tw_reuse, 2 by
 * default), so a reconnect of all devices right after they dropped finds ports as well.
 */
async function open(port: number, from: number, n: number) {
  const started = performance.now();
  conns = new Array(n);
  connected = new Array(n).fill(false);
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      let tries = 0;
      for (;;) {
        const c = new LoadConn(port, `d${from + i}`, `h${from + i}`, BENCH_SECRET, noop);
        conns[i] = c;
        const rc = await c.connected.catch(() => -1);
        if (rc === 0) {
          connected[i] = true;
          break;
        }
        c.close();
        // A refused or reset connection is retried (a device reconnects); it is counted.
        failed++;
        if (++tries >= 5) throw new Error(`d${from + i}: no CONNACK after ${tries} tries (last ${rc})`);
        await new Promise((r) => setTimeout(r, 200 * tries));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(256, n) }, worker));
  return { ms: performance.now() - started, failed };
}

async function traffic(rate: number, measured: number, warmup: number) {
  const lat: number[] = [];
  const warm: number[] = [];
  /** Latencies by the second of the traffic the event was sent in (warm-up included). */
  const bySecond: number[][] = [];
  let acked = 0;
  const seconds = warmup + measured;
  const started = performance.now();
  for (const c of conns)
    c.setAckListener((ms) => {
      acked++;
      const sentAt = performance.now() - ms - started;
      (sentAt < warmup * 1000 ? warm : lat).push(ms);
      const second = Math.max(0, Math.floor(sentAt / 1000));
      bySecond[second] ??= [];
      bySecond[second].push(ms);
    });
  let sent = 0;
  let rr = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      let due = Math.min(rate * seconds, Math.floor(((now - started) * rate) / 1000)) - sent;
      let guard = conns.length;
      while (due > 0 && guard-- > 0) {
        const k = conns[rr++ % conns.length]!.publish(1);
        due -= k;
        sent += k;
      }
      if (now - started >= seconds * 1000) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  const until = performance.now() + 10_000;
  while (acked < sent && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  lat.sort((a, b) => a - b);
  warm.sort((a, b) => a - b);
  return {
    sent,
    acked,
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    warmP50: percentile(warm, 0.5),
    warmP99: percentile(warm, 0.99),
    secondP99: Array.from(bySecond, (b) =>
      b
        ? percentile(
            b.sort((x, y) => x - y),
            0.99,
          )
        : Number.NaN,
    ),
  };
}

async function drop() {
  const open = conns.filter((c) => !c.closed);
  await Promise.all(
    open.map(
      (c) =>
        new Promise<void>((r) => {
          c.socket.once('close', () => r());
          c.close();
        }),
    ),
  );
}

process.on('message', async (m: Record<string, unknown>) => {
  try {
    if (m.cmd === 'connect')
      send({
        cmd: 'connect',
        ...(await open(m.port as number, m.from as number, m.n as number)),
      });
    else if (m.cmd === 'traffic')
      send({
        cmd: 'traffic',
        ...(await traffic(m.rate as number, m.seconds as number, (m.warmup as number | undefined) ?? 0)),
      });
    else if (m.cmd === 'drop') {
      await drop();
      send({ cmd: 'drop' });
    } else if (m.cmd === 'close') {
      for (const c of conns) c.close();
      process.exit(0);
    }
  } catch (e) {
    send({ cmd: m.cmd, error: String(e) });
  }
});
send({ cmd: 'ready' });
