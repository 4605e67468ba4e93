/**
 * The edge's faults for the operator (SPEC §9, §12; "every fault shows in metrics and on the dispatch
 * screen"): free space on the data folder's filesystem (low before it is full), an event log that cannot
 * write (devices held), InfluxDB writes failing (telemetry buffered) and a login flood. Checked every
 * `intervalMs`; a change goes to the dispatch screens on the bus (`systemHealth`), and readiness follows it.
 *
 * Operational sampling of real resources, not domain time: a real interval; instants from the clock.
 */
import { statfs } from 'node:fs/promises';
import type { GatewayMetrics, LogFailure } from '../gateway/gateway.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import type {
  Bus,
  ClusterView,
  DiskSpace,
  SystemHealthReport,
  SystemWarning,
  SystemWarningKind,
} from './bus.ts';

export type { DiskSpace, SystemHealthReport, SystemWarning, SystemWarningKind } from './bus.ts';

export interface SystemHealthDeps {
  dataDir: string;
  lowBytes: number;
  intervalMs: number;
  clock: Clock;
  log: Logger;
  bus: Bus;
  gateway: () => { metrics: GatewayMetrics; logHealth: LogFailure | null } | null;
  /** Separate dispatchers with Redis (CLU-04): the live relay's degradation, null while it works. */
  liveRelay?: (now: number) => { since: number; reason: string } | null;
  /** Separate dispatchers (CLU-08): who holds which community. */
  cluster?: () => ClusterView;
}

/** Below this the filesystem counts as full: SQLite cannot grow its files or its shared memory. */
const FULL_BYTES = 1024 * 1024;
/** Refused device logins per minute above which the dispatch screen shows a login flood. */
const FLOOD_PER_MINUTE = 600;

export class SystemHealth {
  private timer: NodeJS.Timeout | undefined;
  private disk: DiskSpace | null = null;
  private warnings = new Map<SystemWarningKind, SystemWarning>();
  /** The cluster view last sent to the screens (CLU-08). */
  private lastCluster = '';
  private lastFailures: { at: number; n: number } | null = null;
  private checking: Promise<void> | null = null;
  /** Why the data folder's free space is unknown, as last logged (logged once until it changes). */
  private diskUnknown: string | null = null;

  constructor(private readonly deps: SystemHealthDeps) {}

  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => void this.check(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get freeBytes(): number | null {
    return this.disk?.freeBytes ?? null;
  }

  get diskLow(): boolean {
    return this.warnings.has('disk_low') || this.warnings.has('disk_full');
  }

  report(): SystemHealthReport {
    const reasons: string[] = [];
    const log = this.deps.gateway()?.logHealth;
    if (log) reasons.push(`event log cannot write: ${log.reason}`);
    if (this.warnings.has('disk_full')) reasons.push(`disk full: ${this.deps.dataDir}`);
    const relay = this.warnings.get('live_relay_down');
    return {
      ready: reasons.length === 0,
      reasons,
      degraded: relay ? [`live updates do not cross dispatcher instances: ${relay.detail.reason}`] : [],
      warnings: [...this.warnings.values()],
      disk: this.disk,
      now: this.deps.clock.now(),
      ...(this.deps.cluster ? { cluster: this.deps.cluster() } : {}),
    };
  }

  /** Samples everything once; emits `systemHealth` when the set of warnings changed. */
  check(): Promise<void> {
    this.checking ??= this.sample().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  private async sample(): Promise<void> {
    const now = this.deps.clock.now();
    const next = new Map<SystemWarningKind, Record<string, string | number>>();
    try {
      const s = await statfs(this.deps.dataDir);
      this.disk = {
        path: this.deps.dataDir,
        freeBytes: s.bavail * s.bsize,
        totalBytes: s.blocks * s.bsize,
        lowBytes: this.deps.lowBytes,
      };
      const detail = {
        path: this.deps.dataDir,
        freeBytes: this.disk.freeBytes,
        totalBytes: this.disk.totalBytes,
      };
      if (this.disk.freeBytes < FULL_BYTES) next.set('disk_full', detail);
      else if (this.disk.freeBytes < this.deps.lowBytes) next.set('disk_low', detail);
      this.diskUnknown = null;
    } catch (e) {
      // A folder that does not exist (DATA_DIR unused on PostgreSQL) is sampled every interval: said once.
      const why = (e as Error).message;
      if (why !== this.diskUnknown)
        this.deps.log.warn({ err: e, path: this.deps.dataDir }, 'free space of the data folder unknown');
      this.diskUnknown = why;
    }
    const g = this.deps.gateway();
    if (g?.logHealth) next.set('event_log_failing', { reason: g.logHealth.reason, since: g.logHealth.since });
    if (g?.metrics.telemetryFailing)
      next.set('telemetry_failing', {
        buffered: g.metrics.telemetryBuffered,
        dropped: g.metrics.telemetryDropped,
      });
    if (g) {
      const n = g.metrics.authFailures;
      const last = this.lastFailures;
      if (last && now > last.at) {
        const perMinute = Math.round(((n - last.n) * 60_000) / (now - last.at));
        if (perMinute >= FLOOD_PER_MINUTE) next.set('login_flood', { perMinute, busy: g.metrics.loginBusy });
        else if (this.warnings.has('login_flood') && perMinute > 0) {
          // Still refusing: the warning stays until the refusals stop or fall well below the threshold.
          if (perMinute >= FLOOD_PER_MINUTE / 4)
            next.set('login_flood', { perMinute, busy: g.metrics.loginBusy });
        }
      }
      this.lastFailures = { at: now, n };
    }
    const relay = this.deps.liveRelay?.(now);
    if (relay) next.set('live_relay_down', { reason: relay.reason });
    const cluster = this.deps.cluster ? JSON.stringify(this.deps.cluster()) : '';
    const before = [...this.warnings.keys()].sort().join();
    const warnings = new Map<SystemWarningKind, SystemWarning>();
    for (const [kind, detail] of next)
      warnings.set(kind, { kind, since: this.warnings.get(kind)?.since ?? now, detail });
    this.warnings = warnings;
    const after = [...warnings.keys()].sort().join();
    if (before !== after) {
      const report = this.report();
      this.deps.log.warn({ warnings: after || 'none', was: before || 'none' }, 'system health changed');
      this.deps.bus.emit('systemHealth', report);
    } else if (warnings.size > 0 || cluster !== this.lastCluster) {
      // Same warnings, new figures (free space, buffered points) or communities handed over between
      // dispatcher instances (CLU-08): the screens follow them too.
      this.deps.bus.emit('systemHealth', this.report());
    }
    this.lastCluster = cluster;
  }
}
