/**
 * Telemetry to InfluxDB 2.x (SPEC §9, optional `INFLUX_*`), through `@influxdata/influxdb-client`: every
 * accepted event and heartbeat as a point tagged with home, device, kind, room and grid, and the alert
 * metrics (raised, accepted, on site, SLA breached) tagged with community, grid, rule and severity.
 *
 * SPEC §9: "An InfluxDB outage never slows or stops ingestion: writes are buffered within a bound and what
 * is dropped is counted." So `record()` is synchronous and O(1); points wait in a bounded buffer (50,000 by
 * default); one batch is in flight at a time. A batch that fails goes back to the front of the buffer and is
 * retried with back-off (1 s doubling to 30 s) until InfluxDB is back; only what does not fit in the buffer
 * is dropped (the newest points) and counted. The outage is logged when it starts and when it ends.
 */
import { InfluxDB, Point, setLogger, type WriteApi } from '@influxdata/influxdb-client';
import type { Logger } from '../kernel/log.ts';
import type { DeviceEvent } from './protocol.ts';

export interface TelemetryTags {
  home: string;
  device: string;
  kind: string;
  room: string;
  grid: string;
}

export interface TelemetryOptions {
  url: string;
  token: string;
  org: string;
  bucket: string;
  log: Logger;
  /** Most points held while InfluxDB is slow or away. */
  maxBuffer?: number;
  /** Points per write request. */
  batchSize?: number;
  /** How often a partial batch is sent. */
  flushMs?: number;
  /** One write request gives up after this long. */
  timeoutMs?: number;
}

export interface TelemetryStats {
  written: number;
  dropped: number;
  buffered: number;
  /** Writes are failing now (InfluxDB away or refusing): points are being buffered. */
  failing: boolean;
}

/** An alert's tags for the alert metrics. */
export interface AlertTags {
  community: string;
  grid: string;
  rule: string;
  severity: string;
}

export type AlertTransition = 'raised' | 'accepted' | 'on_site' | 'breached';

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export class InfluxTelemetry {
  readonly stats: TelemetryStats = { written: 0, dropped: 0, buffered: 0, failing: false };
  private retryMs = 0;
  private retryAt = 0;
  /** Points dropped during the current outage, for its end-of-outage log line. */
  private droppedInOutage = 0;
  private buffer: string[] = [];
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private writeApi: WriteApi | undefined;
  private readonly maxBuffer: number;
  private readonly batchSize: number;

  constructor(private readonly opts: TelemetryOptions) {
    this.maxBuffer = opts.maxBuffer ?? 50_000;
    this.batchSize = opts.batchSize ?? 5_000;
  }

  start(): void {
    const log = this.opts.log;
    // The client library logs to the console by default; its messages go through our logger instead.
    setLogger({
      error: (message, err) => log.debug({ err }, `influx: ${message}`),
      warn: (message, err) => log.debug({ err }, `influx: ${message}`),
    });
    this.writeApi = new InfluxDB({
      url: this.opts.url,
      token: this.opts.token,
      timeout: this.opts.timeoutMs ?? 5_000,
    }).getWriteApi(this.opts.org, this.opts.bucket, 'ms', {
      // Batching and the bound are ours (counted drops); the library only sends what it is given, once.
      batchSize: this.batchSize + 1,
      flushInterval: 0,
      maxRetries: 0,
      maxBufferLines: this.batchSize,
      writeFailed: () => undefined,
    });
    // Telemetry is a transport concern (not domain time): a real interval that never keeps the process up.
    this.timer = setInterval(() => this.flush(), this.opts.flushMs ?? 1_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    await this.flush(true);
    if (this.buffer.length > 0) {
      // Shutting down with InfluxDB away: what is still buffered is lost, and counted.
      this.opts.log.warn({ dropped: this.buffer.length }, 'telemetry: points still buffered at stop dropped');
      this.drop(this.buffer.length);
      this.buffer = [];
      this.stats.buffered = 0;
    }
    await this.writeApi?.close().catch(() => {});
    this.writeApi = undefined;
  }

  /** One accepted device event (heartbeats included). Never blocks, never throws. */
  record(tags: TelemetryTags, event: DeviceEvent): void {
    const p = new Point(event.type === 'heartbeat' ? 'heartbeat' : 'device_event')
      .tag('home', tags.home)
      .tag('device', tags.device)
      .tag('kind', tags.kind)
      .tag('room', tags.room)
      .tag('grid', tags.grid)
      .timestamp(event.ts);
    switch (event.type) {
      case 'heartbeat':
        p.intField('beat', 1);
        if (event.battery !== undefined) p.floatField('battery', event.battery);
        if (event.rssi !== undefined) p.floatField('rssi', event.rssi);
        if (event.fw !== undefined) p.stringField('fw', event.fw);
        break;
      case 'fall':
        p.tag('type', 'fall')
          .tag('state', event.state)
          .intField('value', event.state === 'detected' ? 1 : 0);
        if (event.confidence !== undefined) p.floatField('confidence', event.confidence);
        break;
      case 'door':
        p.tag('type', 'door')
          .tag('state', event.state)
          .intField('value', event.state === 'open' ? 1 : 0);
        break;
      case 'motion':
        p.tag('type', 'motion')
          .tag('state', event.state)
          .intField('value', event.state === 'active' ? 1 : 0);
        break;
      case 'sos':
        p.tag('type', 'sos').intField('value', 1);
        break;
    }
    this.push(p);
  }

  /**
   * One alert transition (SPEC §9 "alert metrics for dashboards"): measurement `alert`, tagged with the
   * transition, community, grid, rule and severity; `count` 1 and, after the raise, `seconds` since it.
   */
  recordAlert(tags: AlertTags, transition: AlertTransition, at: number, secondsSinceRaised?: number): void {
    const p = new Point('alert')
      .tag('transition', transition)
      .tag('community', tags.community)
      .tag('grid', tags.grid)
      .tag('rule', tags.rule)
      .tag('severity', tags.severity)
      .intField('count', 1)
      .timestamp(at);
    if (secondsSinceRaised !== undefined) p.floatField('seconds', secondsSinceRaised);
    this.push(p);
  }

  private push(p: Point): void {
    const line = p.toLineProtocol();
    if (!line) return;
    if (this.buffer.length >= this.maxBuffer) {
      this.drop(1);
      return;
    }
    this.buffer.push(line);
    this.stats.buffered = this.buffer.length;
    if (this.buffer.length >= this.batchSize && !this.stats.failing) void this.flush();
  }

  private drop(n: number): void {
    this.stats.dropped += n;
    this.droppedInOutage += n;
  }

  /**
   * Sends one batch if none is in flight (and, while InfluxDB is failing, once its retry is due). A failed
   * batch goes back to the front of the buffer; what no longer fits is dropped and counted.
   */
  flush(force = false): Promise<void> {
    if (this.inFlight || this.buffer.length === 0 || !this.writeApi)
      return this.inFlight ?? Promise.resolve();
    // Back-off for an outside service, not domain time: monotonic, so a simulated clock cannot hurry it.
    if (this.stats.failing && !force && performance.now() < this.retryAt) return Promise.resolve();
    const api = this.writeApi;
    const batch = this.buffer.splice(0, this.batchSize);
    this.stats.buffered = this.buffer.length;
    api.writeRecords(batch);
    this.inFlight = api
      .flush()
      .then(
        () => {
          this.stats.written += batch.length;
          if (this.stats.failing) {
            this.opts.log.warn(
              { dropped: this.droppedInOutage, buffered: this.buffer.length },
              'telemetry: InfluxDB writes work again; sending what was buffered',
            );
            this.stats.failing = false;
            this.droppedInOutage = 0;
          }
          this.retryMs = 0;
        },
        (err: unknown) => {
          // Back in front, in order; the newest points that no longer fit are the ones dropped.
          this.buffer = batch.concat(this.buffer);
          const over = this.buffer.length - this.maxBuffer;
          if (over > 0) {
            this.buffer.length = this.maxBuffer;
            this.drop(over);
          }
          this.stats.buffered = this.buffer.length;
          this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs ? this.retryMs * 2 : RETRY_FIRST_MS);
          this.retryAt = performance.now() + this.retryMs;
          if (!this.stats.failing) {
            this.stats.failing = true;
            this.opts.log.warn(
              { err: String(err), buffered: this.buffer.length, maxBuffer: this.maxBuffer },
              'telemetry: InfluxDB writes failing; buffering and retrying',
            );
          }
        },
      )
      .finally(() => {
        this.inFlight = null;
        if (this.buffer.length >= this.batchSize && !this.stats.failing) void this.flush();
      });
    return this.inFlight;
  }
}
