/**
 * A wrong-secret login flood (bench/login-flood.bench.ts, test/gateway/login-flood.test.ts), run as a
 * child process: `login-flood.ts <port> <connections> <id prefix> <ids>` keeps `connections` connections
 * from 127.0.0.1, each sending a CONNECT with a known device id (`<prefix>0…`) and a wrong secret (a new
 * one each time: no cache can answer it) and opening again as soon as it is closed, until it is told
 * `stop` over IPC. Answers `stats` with attempts made and refusals received.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { encodeLength } from './mqtt-frame.ts';

const str = (s: string): Buffer => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** CONNECT (MQTT 3.1.1, clean session, username and password, keep-alive 60 s). */
function connectPacket(id: string, password: string): Buffer {
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0xc2, 0, 60]), str(id), str(id), str(password)]);
  return Buffer.concat([Buffer.from([0x10]), encodeLength(body.length), body]);
}

const [portArg, connsArg, prefix, idsArg] = process.argv.slice(2);
const port = Number(portArg);
const ids = Number(idsArg);
let attempts = 0;
let refused = 0;
let stopping = false;

function open(): void {
  if (stopping) return;
  const id = `${prefix}${Math.floor(Math.random() * ids)}`;
  const s = connect({ port, host: '127.0.0.1', noDelay: true });
  s.on('error', () => {});
  s.on('connect', () => {
    attempts++;
    s.write(connectPacket(id, randomBytes(12).toString('base64url')));
  });
  s.on('data', (d: Buffer) => {
    if (d[0] === 0x20 && d[3] !== 0) refused++;
    s.destroy();
  });
  s.on('close', () => setImmediate(open));
}

for (let i = 0; i < Number(connsArg); i++) open();
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'stats') process.send?.({ cmd: 'stats', attempts, refused });
  if (m.cmd === 'stop') {
    stopping = true;
    process.send?.({ cmd: 'stopped', attempts, refused });
    setTimeout(() => process.exit(0), 200);
  }
});
