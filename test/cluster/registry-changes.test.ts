/**
 * CLU-11 with real processes: an admin's change of the registry reaches the dispatcher that runs the
 * community's rules, whichever dispatcher's API took it. Two dispatchers (ROLE=dispatcher) hold one
 * community each (CLU-08) on a real PostgreSQL, with one gateway; each community has one grid and one
 * household. A change goes through the API of the dispatcher that does NOT hold the community, and the
 * holder's next alert must follow it:
 *
 * - a roster override (SPEC §4, "routing follows at once"): the fall goes to the responder standing in;
 * - a device provisioned for the household: the fall it reports is placed in the device's room;
 * - devices imported from the command line into the shared database: the same;
 * - a staff member's grids changed: their live page on the other dispatcher is re-scoped at once;
 * - a change the holder could not be told of (it was stopped, SIGSTOP, and its connection to the
 *   notifications cut meanwhile): read again once it is back, before its next alert.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { apiCall, eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { type Cluster, type RoleProcess, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const COMMUNITIES = ['c1', 'c2'];

interface AlertView {
  id: string;
  rule: string;
  householdId: string;
  assigneeId: string | null;
  evidence: { summary: string; deviceId: string }[];
}

describe.skipIf(pgBackend.skip)(`registry changes across dispatchers on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  /** For each community: the dispatcher that holds it and the one that does not. */
  const roles = new Map<string, { holder: RoleProcess; other: RoleProcess }>();

  beforeAll(async () => {
    cluster = await startCluster({
      grids: 2,
      householdsPerGrid: 1,
      shape: (plan) =>
        plan.grids.forEach((g, i) => {
          g.community = COMMUNITIES[i]!;
        }),
      gateways: 1,
      dispatchers: ['d1', 'd2'],
      env: { LEASE_TTL_MS: '6000', LEASE_RENEW_MS: '1000', CLUSTER_POLL_MS: '500' },
    });
    // CLU-08: one community each, before any change is made.
    const held = await eventually(
      async () => {
        const r = await cluster.db.query(
          `SELECT community, holder FROM community_leases
            WHERE community = ANY($1) AND expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
          [COMMUNITIES],
        );
        const by = new Map(r.rows.map((x) => [String(x.community), String(x.holder).split('/')[0]!]));
        return by.size === 2 && new Set(by.values()).size === 2 ? by : undefined;
      },
      30_000,
      'the two dispatchers holding one community each',
    );
    for (const c of COMMUNITIES) {
      const holder = cluster.dispatchers.get(held.get(c)!)!;
      const other = [...cluster.dispatchers.values()].find((p) => p !== holder)!;
      roles.set(c, { holder, other });
    }
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  const gridOf = (community: string) => cluster.plan.grids.find((g) => g.community === community)!;
  const homeOf = (community: string) =>
    cluster.plan.households.find((h) => h.gridId === gridOf(community).id)!;
  /** `d` connected to the gateway (it stays connected until the cluster stops) reports `event`, sent now. */
  const report = async (d: DeviceIdentity, event: Record<string, unknown>) => {
    const client = await cluster.device(d);
    await client.publishAsync(topics.events(d.homeId, d.id), JSON.stringify({ ts: Date.now(), ...event }), {
      qos: 1,
    });
  };
  const openAlert = (
    via: RoleProcess,
    token: string,
    householdId: string,
    match: (a: AlertView) => boolean,
  ) =>
    eventually(
      async () => {
        const r = await apiCall<{ alerts: AlertView[] }>(
          cluster.base(via),
          token,
          'GET',
          '/api/alerts?state=open',
        );
        return r.body.alerts?.find((a) => a.householdId === householdId && match(a));
      },
      15_000,
      `the alert of household ${householdId}`,
    );

  /** A motion of the community's household, and the holder's rules past it: they have read the household. */
  const motionSeq = new Map<string, number>();
  const readByHolder = async (community: string) => {
    const home = homeOf(community);
    const motion = cluster.devices.find((d) => d.homeId === home.id && d.kind === 'motion')!;
    const seq = (motionSeq.get(motion.id) ?? 0) + 1;
    motionSeq.set(motion.id, seq);
    await report(motion, { type: 'motion', seq, state: 'active', room: motion.room });
    const logged = await cluster.db.query('SELECT max(seq) AS seq FROM events WHERE device_id = $1', [
      motion.id,
    ]);
    await eventually(
      async () => {
        const r = await cluster.db.query('SELECT seq FROM cursors WHERE name = $1', [`rules:${community}`]);
        return Number(r.rows[0]?.seq ?? 0) >= Number(logged.rows[0].seq);
      },
      15_000,
      `the rules of ${community} past a motion of ${home.id}`,
    );
  };

  it('routes a fall to the responder standing in, when the override was made through the other dispatcher', async () => {
    const { holder, other } = roles.get('c1')!;
    const grid = gridOf('c1');
    const home = homeOf('c1');
    const adminOnHolder = await cluster.admin(holder);
    const adminOnOther = await cluster.admin(other);
    // The holder's routing has read the roster (its week grid is computed from the same cached values).
    const week = await apiCall<{ running: { date: string; shift: 'day' | 'night' }; days: unknown[] }>(
      cluster.base(holder),
      adminOnHolder,
      'GET',
      `/api/roster/week?grid=${grid.id}`,
    );
    expect(week.status).toBe(200);
    const duty = await apiCall<{ duty: { gridId: string; staff: { id: string }[] }[] }>(
      cluster.base(holder),
      adminOnHolder,
      'GET',
      '/api/duty',
    );
    const primary = duty.body.duty.find((d) => d.gridId === grid.id)!.staff[0]!.id;
    // The other community's grid worker stands in for the primary, entered on the other dispatcher.
    const standIn = cluster.plan.staff.find(
      (s) => s.roles.includes('grid_worker') && s.gridIds.includes(gridOf('c2').id),
    )!;
    const swap = await apiCall(cluster.base(other), adminOnOther, 'POST', '/api/roster/overrides', {
      gridId: grid.id,
      date: week.body.running.date,
      shift: week.body.running.shift,
      kind: 'swap',
      staffId: primary,
      replacementId: standIn.id,
    });
    expect(swap.status).toBe(201);

    const radar = cluster.devices.find((d) => d.homeId === home.id && d.kind === 'fall')!;
    await report(radar, { type: 'fall', seq: 1, state: 'detected', room: radar.room });
    const alert = await openAlert(holder, adminOnHolder, home.id, (a) => a.rule === 'FALL' && !!a.assigneeId);
    expect(alert.assigneeId).toBe(standIn.id);
  }, 60_000);

  it('places a fall reported by a device provisioned through the other dispatcher in its room', async () => {
    const { holder, other } = roles.get('c2')!;
    const home = homeOf('c2');
    await readByHolder('c2');
    const adminOnOther = await cluster.admin(other);
    const made = await apiCall<{ id: string; secret: string }>(
      cluster.base(other),
      adminOnOther,
      'POST',
      '/api/devices',
      { id: `${home.id}-radar2`, homeId: home.id, kind: 'fall', room: 'kitchen' },
    );
    expect(made.status).toBe(201);
    const identity = {
      id: made.body.id,
      homeId: home.id,
      kind: 'fall' as const,
      room: 'kitchen',
      secret: made.body.secret,
    };
    // The radar reports no room of its own: the registry's is the one the responder reads.
    await report(identity, { type: 'fall', seq: 1, state: 'detected' });
    const adminOnHolder = await cluster.admin(holder);
    const alert = await openAlert(holder, adminOnHolder, home.id, (a) => a.rule === 'FALL');
    expect(alert.evidence.map((e) => e.summary)).toEqual([
      expect.stringContaining('fall detected in kitchen'),
    ]);
  }, 60_000);

  it('reads the registry again after its notifications were cut, so a change it missed routes its next alert', async () => {
    const { holder, other } = roles.get('c1')!;
    const grid = gridOf('c1');
    const home = homeOf('c1');
    const adminOnHolder = await cluster.admin(holder);
    const adminOnOther = await cluster.admin(other);
    const dutyOn = async () => {
      const r = await apiCall<{ duty: { gridId: string; staff: { id: string }[] }[] }>(
        cluster.base(holder),
        adminOnHolder,
        'GET',
        '/api/duty',
      );
      return r.body.duty.find((d) => d.gridId === grid.id)!.staff.map((p) => p.id);
    };
    // The first test left the c1 fall open and a stand-in on duty; a new responder takes the shift now.
    const before = await dutyOn();
    const created = await apiCall<{ staff: { id: string } }>(
      cluster.base(other),
      adminOnOther,
      'POST',
      '/api/staff',
      {
        id: 'grid-1-newcomer',
        name: '新网格员',
        phone: '13800000000',
        roles: ['grid_worker'],
        gridIds: [grid.id],
        username: 'new-worker',
        password: 'new-worker-password-365',
      },
    );
    expect(created.status).toBe(201);
    const newcomer = 'grid-1-newcomer';
    // The holder stops; every notification connection is cut (the other processes reconnect at once).
    process.kill(holder.child.pid!, 'SIGSTOP');
    try {
      await cluster.db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'g365-signals'`,
      );
      const r = await apiCall(cluster.base(other), adminOnOther, 'POST', '/api/roster', {
        gridId: grid.id,
        entries: [
          { shift: 'day', weekdays: [], staffIds: [newcomer] },
          { shift: 'night', weekdays: [], staffIds: [newcomer] },
        ],
      });
      expect(r.status).toBe(200);
    } finally {
      process.kill(holder.child.pid!, 'SIGCONT');
    }
    // Back, it finds its connection gone, connects again and reads the roster again.
    await eventually(async () => (await dutyOn())[0] === newcomer, 15_000, 'the new roster on the holder');
    expect(before).not.toContain(newcomer);
    // Its next alert goes by it: the help button of the household (a new alert beside the open fall).
    const button = cluster.devices.find((d) => d.homeId === home.id && d.kind === 'button')!;
    await report(button, { type: 'sos', seq: 1 });
    const alert = await openAlert(holder, adminOnHolder, home.id, (a) => a.rule === 'SOS' && !!a.assigneeId);
    expect(alert.assigneeId).toBe(newcomer);
  }, 60_000);

  it('places a fall of a device imported from the command line in its room', async () => {
    const { holder } = roles.get('c2')!;
    const home = homeOf('c2');
    await readByHolder('c2');
    const dir = mkdtempSync(join(tmpdir(), 'g365-import-'));
    try {
      const csv = join(dir, 'devices.csv');
      writeFileSync(csv, `id,homeId,kind,room\n${home.id}-radar3,${home.id},fall,卧室\n`);
      const cli = spawn(
        process.execPath,
        ['--import', 'tsx', 'dispatcher/devices-cli.ts', csv, '--out', join(dir, 'secrets.csv')],
        {
          cwd: join(import.meta.dirname, '../..'),
          env: { ...process.env, ...cluster.env },
          stdio: 'inherit',
        },
      );
      const [code] = (await once(cli, 'exit')) as [number];
      expect(code).toBe(0);
      const secret = readFileSync(join(dir, 'secrets.csv'), 'utf8').trim().split('\n')[1]!.split(',')[1]!;
      const identity = {
        id: `${home.id}-radar3`,
        homeId: home.id,
        kind: 'fall' as const,
        room: 'bedroom',
        secret,
      };
      await report(identity, { type: 'fall', seq: 1, state: 'detected' });
      // A new alert, or evidence on the household's fall still open from the test before.
      const adminOnHolder = await cluster.admin(holder);
      await openAlert(
        holder,
        adminOnHolder,
        home.id,
        (a) => a.rule === 'FALL' && a.evidence.some((e) => e.deviceId === identity.id),
      ).then((a) =>
        expect(a.evidence.find((e) => e.deviceId === identity.id)?.summary).toContain(
          'fall detected in bedroom',
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('gives the next alert the escalation policy saved through the other dispatcher (ESC-02)', async () => {
    const { holder, other } = roles.get('c2')!;
    const home = homeOf('c2');
    const adminOnHolder = await cluster.admin(holder);
    const desk = await cluster.admin(holder);
    const policyOf = async (id: string) =>
      (
        await apiCall<{ alert: { policy: { onSiteWithinMin: number } } }>(
          cluster.base(holder),
          adminOnHolder,
          'GET',
          `/api/alerts/${id}`,
        )
      ).body.alert.policy;
    // The holder raises an alert of the community, reading (and keeping) its policy: the SPEC §6 default.
    const call = await apiCall<{ alert: { id: string } }>(
      cluster.base(holder),
      desk,
      'POST',
      '/api/incidents',
      {
        householdId: home.id,
        category: 'unwell',
        severity: 'high',
        note: '邻居来电',
        caller: '邻居',
      },
    );
    expect(call.status).toBe(201);
    expect((await policyOf(call.body.alert.id)).onSiteWithinMin).toBe(15);
    // The community promises 20 minutes from now on, saved through the other dispatcher.
    const saved = await apiCall(
      cluster.base(other),
      await cluster.admin(other),
      'PUT',
      '/api/escalation-policies/c2',
      {
        acceptWithinMin: 5,
        onSiteWithinMin: 20,
        steps: [
          { kind: 'notify_primary', afterMin: 0 },
          { kind: 'notify_all', afterMin: 10 },
          { kind: 'sla_breach', afterMin: 20 },
        ],
      },
    );
    expect(saved.status).toBe(200);
    // The holder's urgent lane raises the help button's alert under it.
    const button = cluster.devices.find((d) => d.homeId === home.id && d.kind === 'button')!;
    await report(button, { type: 'sos', seq: 1 });
    const sos = await openAlert(holder, adminOnHolder, home.id, (a) => a.rule === 'SOS');
    expect((await policyOf(sos.id)).onSiteWithinMin).toBe(20);
  }, 60_000);

  it("re-scopes a person's live page on one dispatcher when their grids are changed through the other", async () => {
    const [p, q] = [...cluster.dispatchers.values()] as [RoleProcess, RoleProcess];
    const worker = cluster.plan.staff.find((x) => x.id === 'grid-2-worker')!;
    const token = await cluster.login(worker.username, worker.password, p);
    const scopes: { gridIds: string[] | null }[] = [];
    const page: Socket = io(cluster.base(p), {
      auth: { token },
      transports: ['websocket'],
      reconnection: false,
    });
    page.on('scope', (sc: { gridIds: string[] | null }) => scopes.push(sc));
    try {
      await eventually(() => scopes.length > 0, 10_000, 'the live page connected with its scope');
      expect(scopes[0]!.gridIds).toEqual(['grid-2']);
      const admin = await cluster.admin(q);
      const moved = await apiCall(cluster.base(q), admin, 'PATCH', `/api/staff/${worker.id}`, {
        gridIds: ['grid-1'],
      });
      expect(moved.status).toBe(200);
      // The page on the other instance follows: it now sees grid 1 only (SEC-02).
      await eventually(
        () => scopes.some((sc) => sc.gridIds?.join() === 'grid-1'),
        10_000,
        'the live page re-scoped to grid 1',
      );
    } finally {
      page.close();
    }
  }, 60_000);
});
