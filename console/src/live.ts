/**
 * The live alert list: a snapshot from the API, then every change pushed over socket.io. After a lost
 * connection the page says so, and on reconnect asks for every change it missed (catch-up by changeSeq).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Alert, ServerToClientEvents } from '../../dispatcher/api/types.ts';
import { api, connectLive, type LiveSocket } from './api.ts';

export interface LiveState {
  alerts: Map<string, Alert>;
  connected: boolean;
  lastEvent: { alert: Alert; action: string } | null;
}

/** The other live events a page may follow (dispatch screen: duty gaps, handover, channel health, arrivals). */
export type LiveHandlers = Partial<
  Pick<
    ServerToClientEvents,
    'dutyGap' | 'handover' | 'channelHealth' | 'systemHealth' | 'arrivalSuggested' | 'responderUnreachable'
  >
> & {
  /** After a reconnect: whatever the page loads by request is stale too, so it reloads it. */
  reconnected?: () => void;
};

export function useLiveAlerts(
  onNotification?: (n: { alertId: string; severity: string; reason: string }) => void,
  handlers: LiveHandlers = {},
): LiveState {
  const [state, setState] = useState<LiveState>({
    alerts: new Map(),
    connected: false,
    lastEvent: null,
  });
  const seq = useRef(0);
  const notify = useRef(onNotification);
  notify.current = onNotification;
  const more = useRef(handlers);
  more.current = handlers;

  useEffect(() => {
    let socket: LiveSocket | null = null;
    let cancelled = false;
    const apply = (alert: Alert, action: string) => {
      setState((s) => {
        const prev = s.alerts.get(alert.id);
        if (prev && prev.changeSeq >= alert.changeSeq) return s;
        const alerts = new Map(s.alerts);
        alerts.set(alert.id, alert);
        return { ...s, alerts, lastEvent: { alert, action } };
      });
      seq.current = Math.max(seq.current, alert.changeSeq);
    };
    const load = async () => {
      const snap = await api.alerts('open');
      if (cancelled) return;
      seq.current = Math.max(seq.current, snap.changeSeq);
      followServiceClock(snap.now, snap.rate);
      setState((s) => {
        const alerts = new Map(s.alerts);
        for (const a of snap.alerts) {
          const prev = alerts.get(a.id);
          if (!prev || prev.changeSeq < a.changeSeq) alerts.set(a.id, a);
        }
        return { ...s, alerts };
      });
    };
    void load().then(() => {
      if (cancelled) return;
      socket = connectLive();
      socket.on('alert', ({ alert, action }) => apply(alert, action));
      // The acknowledgement is the page's word that the notice reached this phone (NOTIFY-02).
      socket.on('notification', (n, ack) => {
        notify.current?.(n);
        if (typeof ack === 'function') ack(true);
      });
      socket.on('responderUnreachable', (u) => more.current.responderUnreachable?.(u));
      // A dispatcher of some communities gets live changes for those only; alerts of other communities
      // in the snapshot would go stale, so the page keeps only what it follows.
      socket.on('scope', ({ communities }) => {
        if (communities === null) return;
        const keep = new Set(communities);
        setState((s) => {
          const alerts = new Map([...s.alerts].filter(([, a]) => keep.has(a.community)));
          return alerts.size === s.alerts.size ? s : { ...s, alerts };
        });
      });
      socket.on('dutyGap', (r) => more.current.dutyGap?.(r));
      socket.on('handover', (r) => more.current.handover?.(r));
      socket.on('channelHealth', (c) => more.current.channelHealth?.(c));
      socket.on('systemHealth', (h) => more.current.systemHealth?.(h));
      socket.on('arrivalSuggested', (p) => {
        apply(p.alert, 'arrivalSuggested');
        more.current.arrivalSuggested?.(p);
      });
      let connectedBefore = false;
      socket.on('connect', () => {
        if (connectedBefore) more.current.reconnected?.();
        connectedBefore = true;
        setState((s) => ({ ...s, connected: true }));
        socket?.emit('catchup', seq.current, () => {});
      });
      socket.on('disconnect', (reason) => {
        setState((s) => ({ ...s, connected: false }));
        // A server that shut down says goodbye ("io server disconnect"), after which socket.io does not
        // retry by itself; the service will be back (restart, upgrade), so keep trying.
        if (reason === 'io server disconnect') setTimeout(() => socket?.connect(), 1000);
      });
    });
    return () => {
      cancelled = true;
      socket?.disconnect();
    };
  }, []);
  return state;
}

/**
 * The service's clock as this page knows it (SIM-03): its instant at the last answer and how fast it runs,
 * so countdowns and "now" follow a clock that runs accelerated instead of the browser's.
 */
let serviceClock = { at: Date.now(), wall: Date.now(), rate: 1 };

const clockFollowers = new Set<() => void>();

/** Takes the service clock from an answer that carries it (the alert list, the session). */
export function followServiceClock(now: number, rate: number): void {
  serviceClock = { at: now, wall: Date.now(), rate };
  for (const f of clockFollowers) f();
}

/** Now on the service's clock. */
export function serviceNow(): number {
  return serviceClock.at + (Date.now() - serviceClock.wall) * serviceClock.rate;
}

/** Re-renders every second (countdowns) with now on the service's clock. */
export function useTick(ms = 1000): number {
  const [now, setNow] = useState(serviceNow());
  useEffect(() => {
    const tick = () => setNow(serviceNow());
    const h = setInterval(tick, ms);
    // A new reading of the service clock shows at once, not at the next tick.
    clockFollowers.add(tick);
    return () => {
      clearInterval(h);
      clockFollowers.delete(tick);
    };
  }, [ms]);
  return now;
}

export function formatCountdown(msLeft: number): string {
  const neg = msLeft < 0;
  const s = Math.floor(Math.abs(msLeft) / 1000);
  const mmss = `${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  // Past an hour the minutes alone stop being readable from across the room.
  const text =
    s >= 3600
      ? `${Math.floor(s / 3600)}:${mmss}`
      : `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return neg ? `-${text}` : text;
}
