/**
 * A simulated responder: logs in through the HTTP API, listens on the live channel like the responder page,
 * and accepts, goes, arrives and resolves after configurable delays — or never answers.
 */
import { io, type Socket } from 'socket.io-client';
import type {
  Alert,
  ClientToServerEvents,
  LoginResponse,
  ServerToClientEvents,
} from '../dispatcher/api/types.ts';
import type { Clock, Timer } from '../kernel/clock.ts';
import { type Duration, seconds } from '../kernel/time.ts';

export interface ResponderBehaviour {
  /** Never answers (the escalation ladder must reach the next person). */
  silent?: boolean;
  acceptAfter?: Duration;
  enRouteAfter?: Duration;
  onSiteAfter?: Duration;
  resolveAfter?: Duration;
  outcome?: 'assisted' | 'false_alarm' | 'resident_away' | 'ambulance';
}

export class SimResponder {
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | undefined;
  private token = '';
  private timers: Timer[] = [];
  private handled = new Set<string>();
  readonly accepted: string[] = [];
  readonly notifications: { alertId: string; reason: string }[] = [];

  constructor(
    private readonly baseUrl: string,
    readonly username: string,
    private readonly password: string,
    private readonly clock: Clock,
    private readonly behaviour: ResponderBehaviour = {},
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    const res = await fetch(`${this.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: this.username, password: this.password }),
    });
    if (!res.ok) throw new Error(`login ${this.username} failed: HTTP ${res.status}`);
    this.token = ((await res.json()) as LoginResponse).token;
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(this.baseUrl, {
      auth: { token: this.token },
      transports: ['websocket'],
    });
    this.socket = socket;
    socket.on('notification', (n) => {
      this.notifications.push({ alertId: n.alertId, reason: n.reason });
      if (this.behaviour.silent || this.handled.has(n.alertId)) return;
      this.handled.add(n.alertId);
      this.handle(n.alertId);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers.splice(0)) t.cancel();
    this.socket?.disconnect();
  }

  async act(
    alertId: string,
    action: string,
    body: unknown = {},
  ): Promise<{ status: number; body: { alert?: Alert } }> {
    const res = await fetch(`${this.baseUrl}/api/alerts/${alertId}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as { alert?: Alert } };
  }

  private handle(alertId: string): void {
    const b = this.behaviour;
    const steps: [Duration, () => Promise<unknown>][] = [
      [
        b.acceptAfter ?? seconds(10),
        async () => {
          const r = await this.act(alertId, 'accept');
          if (r.status !== 200) throw new Error('someone else took it');
          this.accepted.push(alertId);
        },
      ],
      [b.enRouteAfter ?? seconds(5), () => this.act(alertId, 'en-route')],
      [b.onSiteAfter ?? seconds(60), () => this.act(alertId, 'on-site')],
      [
        b.resolveAfter ?? seconds(30),
        () =>
          this.act(alertId, 'resolve', {
            outcome: b.outcome ?? 'assisted',
            note: '老人已扶起，状态良好，门已锁好 / resident helped up, door locked',
          }),
      ],
    ];
    const run = (i: number) => {
      const step = steps[i];
      if (!step) return;
      this.timers.push(
        this.clock.after(step[0], () => {
          step[1]().then(
            () => run(i + 1),
            (e: unknown) => {
              if ((e as Error).message !== 'someone else took it') this.onError(e);
            },
          );
        }),
      );
    };
    run(0);
  }
}
