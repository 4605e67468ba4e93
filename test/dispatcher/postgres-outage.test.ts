/**
 * The service on PostgreSQL (DATABASE_URL=postgres://…) when the database becomes unreachable (SPEC §3,
 * §12): nothing is acknowledged that is not committed, /readyz says not ready and why, and both recover by
 * themselves when the database is back; the same for a gateway process alone (ROLE=gateway, CLU-01), whose
 * cross-process signals reconnect too. The connection runs through a TCP relay on loopback that the test
 * cuts and restores, as a network failure between the service and a real PostgreSQL server would.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardianService } from '../../dispatcher/service.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { topics } from '../../gateway/protocol.ts';
import { hashDeviceSecret } from '../../gateway/secrets.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { bareHousehold, eventually, tempDir, testConfig } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;

/** A TCP relay to the database that can be cut (every connection dropped, nothing accepted) and restored. */
class Relay {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => this.sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', () => r()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  }
}

// The whole service in one process, and the gateway role alone (CLU-01): the edge holds and heals the same way.
for (const role of ['all', 'gateway'] as const)
  describe.skipIf(pgBackend.skip)(
    `the service (ROLE=${role}) on ${pgBackend.name} when the database is unreachable`,
    () => {
      let service: GuardianService;
      let relay: Relay;
      let drop: () => Promise<void>;
      let direct: PostgresStore;
      const dir = tempDir();
      const SECRET = 'outage-secret-1';

      beforeAll(async () => {
        const db = await createTestDatabase();
        drop = db.drop;
        const url = new URL(db.url);
        relay = new Relay({ host: url.hostname, port: Number(url.port) });
        await relay.open();
        const viaRelay = new URL(db.url);
        viaRelay.port = String(relay.port);
        direct = new PostgresStore({ url: db.url });
        await direct.migrate();
        await direct.upsertGrid({ id: 'g1', name: 'G1', community: 'c', leaderId: null });
        await direct.upsertHousehold(bareHousehold('h1', 'g1'));
        await direct.createDevice({
          id: 'h1-fall',
          homeId: 'h1',
          kind: 'fall',
          room: 'bathroom',
          secretHash: hashDeviceSecret(SECRET),
          createdAt: 0,
        });
        service = new GuardianService({
          config: testConfig(dir.path, {
            ROLE: role,
            DATABASE_URL: viaRelay.toString(),
            PG_STATEMENT_TIMEOUT_MS: '3000',
          }),
          clock: new SystemClock(),
          log: silentLogger(),
        });
        await service.start();
      });
      afterAll(async () => {
        await service?.stop();
        await direct?.close();
        await relay?.cut();
        await drop?.();
        dir.remove();
      });

      const readyz = async () => {
        const res = await fetch(`http://127.0.0.1:${service.httpPort}/readyz`);
        return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
      };
      const device = () =>
        mqtt.connectAsync({
          host: '127.0.0.1',
          port: service.mqttPort,
          clientId: 'h1-fall',
          username: 'h1-fall',
          password: SECRET,
          reconnectPeriod: 0,
          protocolVersion: 4,
        });
      const fall = (seq: number) =>
        JSON.stringify({ type: 'fall', ts: Date.now(), seq, state: 'detected', room: 'bathroom' });
      const logged = async (seq: number) =>
        (await direct.readEvents(0, 10_000)).filter(
          (e) => e.deviceId === 'h1-fall' && e.event.type === 'fall' && e.event.seq === seq,
        ).length;

      it('acknowledges nothing while the database is unreachable, says why, and recovers by itself', async () => {
        expect((await readyz()).status).toBe(200);
        const before = await device();
        await before.publishAsync(topics.events('h1', 'h1-fall'), fall(1), { qos: 1 });
        expect(await logged(1)).toBe(1);

        // The device stays connected through the outage (a device connecting now is refused with CONNACK 3,
        // server unavailable: its secret cannot be checked).
        await relay.cut();
        const down = await eventually(async () => {
          const r = await readyz();
          return r.status === 503 ? r : undefined;
        }, 30_000);
        expect(down.body).toMatchObject({ ready: false });
        expect(down.body.reason).toMatch(/PostgreSQL unreachable/);
        await expect(device()).rejects.toMatchObject({ code: 3 });

        // A fall sent now: its PUBACK must not come while nothing can be committed.
        const during = before;
        let acked = false;
        let isClosed = false;
        during.once('close', () => {
          isClosed = true;
        });
        const sent = during
          .publishAsync(topics.events('h1', 'h1-fall'), fall(2), { qos: 1 })
          .then(() => {
            acked = true;
          })
          .catch(() => {});
        // The gateway has the fall: its write is waiting (held) or failed (the session ended).
        await eventually(
          () => isClosed || service.gateway.metrics.logQueueDepth > 0,
          30_000,
          'the write tried',
        );
        expect(acked).toBe(false);

        await relay.open();
        await eventually(async () => (await readyz()).status === 200, 30_000, 'ready again');
        if (isClosed) {
          // The device reconnects and resends: acknowledged now, recorded once.
          const after = await device();
          await after.publishAsync(topics.events('h1', 'h1-fall'), fall(2), { qos: 1 });
          await after.endAsync();
        } else {
          await sent;
          expect(acked).toBe(true);
          await during.endAsync();
        }
        during.end(true);
        expect(await logged(2)).toBe(1);
        expect((await readyz()).body).toEqual({ ready: true });
      });
    },
  );
