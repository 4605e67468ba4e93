/**
 * Rules engine throughput: events/s through the pure engine for 10,000 homes on one
 * core, against a baseline measured in the same run: the bare cost of handling the same events (look up
 * the home's state, serialise the event as the log reader would, keep a per-home counter). Events are
 * ordinary routine days from simulators/routine.ts, interleaved across homes in time order, heartbeats
 * included, so every silence deadline is computed and fired as in production.
 */
import { emptyHomeState, evaluate, type HomeContext, type HomeState } from '../dispatcher/rules/engine.ts';
import { resolveSettings } from '../dispatcher/rules/settings.ts';
import type { LoggedEvent } from '../gateway/ports.ts';
import type { DeviceEvent, DeviceKind } from '../gateway/protocol.ts';
import { dailyRoutine } from '../simulators/routine.ts';

const HOMES = 10_000;
const TEMPLATES = 100;
const HOURS = 1;
const ZONE = 'Asia/Shanghai';
const DEVICES: { id: string; kind: DeviceKind; room: string }[] = [
  { id: 'fall', kind: 'fall', room: 'bathroom' },
  { id: 'door', kind: 'door', room: 'entrance' },
  { id: 'm-living', kind: 'motion', room: 'living' },
  { id: 'm-bedroom', kind: 'motion', room: 'bedroom' },
  { id: 'm-bathroom', kind: 'motion', room: 'bathroom' },
  { id: 'm-kitchen', kind: 'motion', room: 'kitchen' },
];

function buildEvents(): { events: LoggedEvent[]; contexts: Map<string, HomeContext> } {
  const settings = resolveSettings(null);
  const templates = Array.from({ length: TEMPLATES }, (_, t) =>
    dailyRoutine({ homeId: `t${t}`, devices: DEVICES, seed: t, date: '2026-03-10', zone: ZONE }),
  );
  const dayStart = Date.UTC(2026, 2, 9, 16); // 2026-03-10 00:00 in Shanghai
  const from = dayStart + 7 * 3_600_000; // 07:00–08:00: getting up, heartbeats, morning checks
  const to = from + HOURS * 3_600_000;
  const contexts = new Map<string, HomeContext>();
  const events: LoggedEvent[] = [];
  for (let h = 0; h < HOMES; h++) {
    const homeId = `h${h}`;
    contexts.set(homeId, {
      householdId: homeId,
      zone: ZONE,
      devices: new Map(DEVICES.map((d) => [`${homeId}-${d.id}`, { kind: d.kind, room: d.room }])),
      settings,
    });
    for (const s of templates[h % TEMPLATES]!) {
      if (s.at < from || s.at >= to) continue;
      const event = { ...s.event, ts: s.at } as DeviceEvent;
      events.push({
        seq: 0,
        deviceId: `${homeId}-${s.deviceId}`,
        homeId,
        receivedAt: s.at,
        ts: s.at,
        flags: [],
        event,
      });
    }
  }
  events.sort((a, b) => a.ts - b.ts);
  events.forEach((e, i) => {
    e.seq = i + 1;
  });
  return { events, contexts };
}

function baseline(events: LoggedEvent[]): number {
  const seen = new Map<string, number>();
  let bytes = 0;
  const t0 = performance.now();
  for (const e of events) {
    seen.set(e.homeId, (seen.get(e.homeId) ?? 0) + 1);
    bytes += JSON.stringify(e.event).length;
  }
  const s = (performance.now() - t0) / 1000;
  if (bytes === 0) throw new Error('no events');
  return events.length / s;
}

function engine(
  events: LoggedEvent[],
  contexts: Map<string, HomeContext>,
): { rate: number; triggers: number } {
  const states = new Map<string, HomeState>();
  let triggers = 0;
  const t0 = performance.now();
  for (const e of events) {
    const r = evaluate(states.get(e.homeId) ?? emptyHomeState(), e, contexts.get(e.homeId)!);
    states.set(e.homeId, r.state);
    triggers += r.triggers.length;
  }
  const s = (performance.now() - t0) / 1000;
  return { rate: events.length / s, triggers };
}

export async function run(): Promise<void> {
  const { events, contexts } = buildEvents();
  console.log(
    `${events.length.toLocaleString('en')} events, ${HOMES.toLocaleString('en')} homes, ${HOURS} h of ordinary routine`,
  );
  // Warm up both paths once (JIT), then measure three rounds and report the median.
  baseline(events.slice(0, 100_000));
  engine(events.slice(0, 100_000), contexts);
  const base: number[] = [];
  const eng: number[] = [];
  let triggers = 0;
  for (let i = 0; i < 3; i++) {
    base.push(baseline(events));
    const r = engine(events, contexts);
    eng.push(r.rate);
    triggers = r.triggers;
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[1]!;
  const e = median(eng);
  const b = median(base);
  console.log(`rules engine: ${Math.round(e).toLocaleString('en')} events/s (one core; target ≥ 50,000)`);
  console.log(
    `baseline (state lookup + JSON of the same events): ${Math.round(b).toLocaleString('en')} events/s`,
  );
  console.log(`ratio engine/baseline: ${(e / b).toFixed(2)}; triggers in an ordinary routine: ${triggers}`);
}
