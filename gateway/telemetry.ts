/**
 * Sensor telemetry to InfluxDB 2.x (SPEC §9, optional `INFLUX_*`): every accepted event and heartbeat as a
 * point tagged with home, device, kind, room and grid, through `@influxdata/influxdb-client`.
 *
 * SPEC §9: "An InfluxDB outage never slows or stops ingestion: writes are buffered within a bound and what
 * is dropped is counted." So `record()` is synchronous and O(1); points wait in a bounded buffer; one batch
 * is in flight at a time; when the buffer is full or a batch fails, the points are dropped and counted.
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
}

export class InfluxTelemetry {
  readonly stats: TelemetryStats = { written: 0, dropped: 0, buffered: 0 };
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
    await this.flush();
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
    const line = p.toLineProtocol();
    if (!line) return;
    if (this.buffer.length >= this.maxBuffer) {
      this.stats.dropped++;
      return;
    }
    this.buffer.push(line);
    this.stats.buffered = this.buffer.length;
    if (this.buffer.length >= this.batchSize) void this.flush();
  }

  /** Sends one batch if none is in flight. A failed batch is dropped and counted, not retried forever. */
  flush(): Promise<void> {
    if (this.inFlight || this.buffer.length === 0 || !this.writeApi)
      return this.inFlight ?? Promise.resolve();
    const api = this.writeApi;
    const batch = this.buffer.splice(0, this.batchSize);
    this.stats.buffered = this.buffer.length;
    api.writeRecords(batch);
    this.inFlight = api
      .flush()
      .then(
        () => {
          this.stats.written += batch.length;
        },
        (err: unknown) => {
          this.stats.dropped += batch.length;
          this.opts.log.warn({ err: String(err), dropped: batch.length }, 'telemetry batch dropped');
        },
      )
      .finally(() => {
        this.inFlight = null;
        if (this.buffer.length >= this.batchSize) void this.flush();
      });
    return this.inFlight;
  }
}
