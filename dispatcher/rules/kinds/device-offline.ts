/**
 * DEVICE_OFFLINE (RULE-08): a device is disconnected (will or keep-alive timeout) or silent for 3
 * heartbeat periods; a device provisioned and never heard counts from when its home went live. Technical:
 * any message from the device clears it (RULE-13). The activity rules also raise it when their motion
 * sensors are blind (RULE-10, `Run.heldBack`).
 */
import { backOnline, disconnected, type Said, silentSince, deviceOffline as words } from '../explain.ts';
import type { EventInput, RuleHandler, Run } from '../run.ts';
import { NEVER_HEARD } from '../state.ts';

function offline(run: Run, id: string, at: number, why: Said, seq: number | null, type: string): void {
  const said = words(id, run.ctx.devices.get(id), why);
  run.trigger(
    'DEVICE_OFFLINE',
    at,
    id,
    { seq, deviceId: id, type, at, summary: said.summary },
    said.explanation,
  );
}

export const deviceOffline: RuleHandler = {
  rule: 'DEVICE_OFFLINE',
  deadlines(run, consider) {
    const s = run.s;
    for (const id in s.devices) {
      const f = s.devices[id]!;
      // Only registered devices: one removed from the household file is not expected to speak.
      if (f.offline === null && run.ctx.devices.has(id))
        consider({ at: f.seenAt + run.set.silentMs, rule: 'DEVICE_OFFLINE', deviceId: id });
    }
    // A registered device never heard from in a home whose other devices speak (it was installed) is
    // silent since then, or since its provisioning if later: a fall radar that never came online must not
    // go unnoticed (SPEC §5 "silent for 3 heartbeat periods").
    for (const id of run.ctx.devices.keys()) {
      const since = id in s.devices ? null : run.neverHeardSince(id);
      if (since !== null) consider({ at: since + run.set.silentMs, rule: 'DEVICE_OFFLINE', deviceId: id });
    }
  },
  fire(run, d) {
    const s = run.s;
    const id = d.deviceId!;
    const heard = s.devices[id];
    const f = heard ?? { seenAt: run.neverHeardSince(id) ?? d.at, offline: null, battery: null, low: false };
    s.devices[id] = { ...f, offline: { since: f.seenAt, cause: heard ? 'silent' : NEVER_HEARD } };
    offline(
      run,
      id,
      d.at,
      silentSince(f.seenAt, d.at, run.set.silentMs, !heard, run.hhmm),
      null,
      heard ? 'silent' : NEVER_HEARD,
    );
  },
  heard(run, e) {
    const ev = e.logged.event;
    if (ev.type !== 'presence' || ev.state === 'online') {
      signOfLife(run, e);
      if (ev.type === 'presence' && ev.session !== undefined) {
        const f = run.s.devices[e.logged.deviceId]!;
        if (f.session === undefined || ev.session > f.session)
          run.s.devices[e.logged.deviceId] = { ...f, session: ev.session };
      }
      return ev.type === 'presence';
    }
    const s = run.s;
    const id = e.logged.deviceId;
    const f = s.devices[id];
    if (f?.offline) return true;
    // DEV-11: the end of a session older than one already online (the device reconnected elsewhere before
    // the gateway it left wrote this) says nothing about the device now.
    if (ev.session !== undefined && f?.session !== undefined && ev.session < f.session) return true;
    // SPEC §5: a device is disconnected by its will or a keep-alive timeout. A clean DISCONNECT is the
    // device ending its own session (MQTT 3.1.1 §3.14: its will is discarded), as a battery device or a
    // one-shot publisher (the README's mosquitto_pub) does after each message: not a fault by itself. Its
    // silence clock keeps running from its last word, so one that stays away is DEVICE_OFFLINE after 3
    // heartbeat periods; a device that means to be offline says so with its `offline` status.
    if (ev.cause === 'disconnect') return true;
    if (f && f.seenAt > e.heard) return true; // stale: the device spoke after this record
    s.devices[id] = {
      ...f,
      seenAt: f?.seenAt ?? e.heard,
      battery: f?.battery ?? null,
      low: f?.low ?? false,
      offline: { since: e.heard, cause: ev.cause },
    };
    offline(run, id, e.heard, disconnected(run.hhmm(e.heard), ev.cause), e.logged.seq, 'presence');
    return true;
  },
};

/** A sign of life from the device, heard at `e.heard` (the receive time). */
function signOfLife(run: Run, e: EventInput): void {
  const s = run.s;
  const ts = e.heard;
  const id = e.logged.deviceId;
  const f = s.devices[id];
  if (f && f.offline === null) {
    if (ts > f.seenAt) s.devices[id] = { ...f, seenAt: ts };
    return;
  }
  if (s.liveSince == null) s.liveSince = ts;
  // Back online: any message from the device (RULE-13: technical alerts clear themselves).
  const wasBlind =
    f?.offline != null && f.offline.cause !== NEVER_HEARD && run.ctx.devices.get(id)?.kind === 'motion';
  s.devices[id] = {
    ...f,
    seenAt: Math.max(ts, f?.seenAt ?? ts),
    offline: null,
    battery: f?.battery ?? null,
    low: f?.low ?? false,
  };
  if (!f) return;
  // Motion during the outage is unknown: the silence clocks restart now.
  if (wasBlind && (s.quietFrom === null || ts > s.quietFrom)) s.quietFrom = ts;
  const stillOffline = Object.values(s.devices).some((d) => d.offline !== null);
  if (!stillOffline)
    run.clear('DEVICE_OFFLINE', id, ts, {
      seq: e.logged.seq,
      deviceId: id,
      type: e.logged.event.type,
      at: ts,
      summary: backOnline(id, ts - f.offline!.since),
    });
}
