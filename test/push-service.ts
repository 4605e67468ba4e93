/**
 * A push service (RFC 8030) on loopback, and phones that subscribe to it, for the Web Push tests: it
 * speaks HTTPS with a certificate made here by openssl, checks each message's VAPID signature (RFC 8292)
 * and decrypts it with the phone's own keys (RFC 8291, aes128gcm), as a browser vendor's push service
 * and the phone would.
 */
import { execFile } from 'node:child_process';
import { createECDH, createPublicKey, randomBytes, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { PushMessage } from '../dispatcher/notify/push.ts';
import { tempDir } from './helpers.ts';

const ece = createRequire(import.meta.url)('http_ece') as {
  decrypt(
    body: Buffer,
    params: { version: string; privateKey: ReturnType<typeof createECDH>; authSecret: string },
  ): Buffer;
};
const run = promisify(execFile);

export interface Tls {
  cert: string;
  key: string;
  certFile: string;
  remove: () => void;
}

/** A self-signed certificate for 127.0.0.1; `certFile` is what PUSH_CA_FILE trusts. */
export async function loopbackCert(): Promise<Tls> {
  const dir = tempDir('g365-push-');
  const certFile = join(dir.path, 'cert.pem');
  const keyFile = join(dir.path, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  return {
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    certFile,
    remove: dir.remove,
  };
}

export type Phone = ReturnType<typeof phone>;

/** A phone's browser: its own P-256 key pair and auth secret, as the Push API makes them. */
export function phone(endpoint: string) {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16).toString('base64url');
  return {
    ecdh,
    subscription: { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth } },
  };
}

export interface Pushed {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  message: PushMessage;
  jwt: { aud: string; exp: number; sub: string };
  vapidKey: string;
}

/**
 * The push service. For each message it checks the VAPID JWT's ES256 signature against the key in the
 * Authorization header, then decrypts the body with the phone's private key and auth secret. `status`
 * answers per path (201 by default). Close it with `close()`.
 */
export async function pushService(tls: Tls, phones: Map<string, Phone>, status = new Map<string, number>()) {
  const got: Pushed[] = [];
  const problems: string[] = [];
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const path = req.url ?? '';
        const p = phones.get(path);
        if (!p) throw new Error(`no subscription at ${path}`);
        if (req.method !== 'POST') throw new Error(`method ${req.method}`);
        if (req.headers['content-encoding'] !== 'aes128gcm') throw new Error('not aes128gcm');
        const auth = /^vapid t=([^,]+), k=(.+)$/.exec(String(req.headers.authorization));
        if (!auth) throw new Error(`authorization ${req.headers.authorization}`);
        const [head, claims, sig] = auth[1]!.split('.');
        const raw = Buffer.from(auth[2]!, 'base64url');
        const key = createPublicKey({
          key: {
            kty: 'EC',
            crv: 'P-256',
            x: raw.subarray(1, 33).toString('base64url'),
            y: raw.subarray(33, 65).toString('base64url'),
          },
          format: 'jwk',
        });
        const signed = verify(
          'sha256',
          Buffer.from(`${head}.${claims}`),
          { key, dsaEncoding: 'ieee-p1363' },
          Buffer.from(sig!, 'base64url'),
        );
        if (!signed) throw new Error('VAPID signature does not verify');
        const jwt = JSON.parse(Buffer.from(claims!, 'base64url').toString()) as Pushed['jwt'];
        const body = ece.decrypt(Buffer.concat(chunks), {
          version: 'aes128gcm',
          privateKey: p.ecdh,
          authSecret: p.subscription.keys.auth,
        });
        got.push({
          path,
          headers: req.headers,
          message: JSON.parse(body.toString('utf8')) as PushMessage,
          jwt,
          vapidKey: auth[2]!,
        });
        res.statusCode = status.get(path) ?? 201;
      } catch (e) {
        problems.push((e as Error).message);
        res.statusCode = 400;
      }
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, got, problems, close: () => new Promise<void>((r) => server.close(() => r())) };
}
