import { describe, expect, it } from 'vitest';
import { emptyHomeState, evaluate, type HomeContext } from '../../dispatcher/rules/engine.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceEvent } from '../../gateway/protocol.ts';

const ctx: HomeContext = {
  householdId: 'h1',
  zone: 'Asia/Shanghai',
  devices: new Map([
    ['h1-fall', { kind: 'fall', room: 'bathroom' }],
    ['h1-btn', { kind: 'button', room: 'bedroom' }],
    ['h1-m', { kind: 'motion', room: 'living' }],
  ]),
};
const T = Date.UTC(2026, 2, 10, 1, 12); // 09:12 in Shanghai
let seq = 0;
const logged = (deviceId: string, event: DeviceEvent): LoggedEvent => ({
  seq: ++seq,
  deviceId,
  homeId: 'h1',
  receivedAt: event.ts,
  ts: event.ts,
  flags: [],
  event,
});

describe('rules engine', () => {
  it('raises FALL with evidence and a zh/en explanation in community time', () => {
    const r = evaluate(
      emptyHomeState(),
      logged('h1-fall', { type: 'fall', ts: T, state: 'detected', confidence: 0.92 }),
      ctx,
    );
    expect(r.triggers).toHaveLength(1);
    expect(r.triggers[0]).toMatchObject({ rule: 'FALL', householdId: 'h1', deviceId: 'h1-fall', at: T });
    expect(r.triggers[0]!.explanation.en).toBe('fall radar detected a fall in bathroom at 09:12 (92%)');
    expect(r.triggers[0]!.explanation.zh).toContain('09:12');
    expect(r.triggers[0]!.explanation.zh).toContain('卫生间');
  });

  it('raises SOS when the help button is pressed', () => {
    const r = evaluate(emptyHomeState(), logged('h1-btn', { type: 'sos', ts: T }), ctx);
    expect(r.triggers.map((t) => t.rule)).toEqual(['SOS']);
  });

  it('records motion after a fall as evidence only, never as a new alert', () => {
    const s1 = evaluate(
      emptyHomeState(),
      logged('h1-fall', { type: 'fall', ts: T, state: 'detected' }),
      ctx,
    ).state;
    const r = evaluate(
      s1,
      logged('h1-m', { type: 'motion', ts: T + 60_000, state: 'active', room: 'living' }),
      ctx,
    );
    expect(r.triggers).toEqual([expect.objectContaining({ rule: 'FALL', attachOnly: true })]);
    expect(r.triggers[0]!.evidence.summary).toContain('resident moved after the fall');
  });

  it('raises LOW_BATTERY at 15 % and clears it when the battery is replaced', () => {
    const a = evaluate(emptyHomeState(), logged('h1-m', { type: 'heartbeat', ts: T, battery: 16 }), ctx);
    expect(a.triggers).toEqual([]);
    const b = evaluate(a.state, logged('h1-m', { type: 'heartbeat', ts: T + 1, battery: 15 }), ctx);
    expect(b.triggers.map((t) => t.rule)).toEqual(['LOW_BATTERY']);
    const c = evaluate(b.state, logged('h1-m', { type: 'heartbeat', ts: T + 2, battery: 14 }), ctx);
    expect(c.triggers).toEqual([]);
    const d = evaluate(c.state, logged('h1-m', { type: 'heartbeat', ts: T + 3, battery: 100 }), ctx);
    expect(d.clearances.map((x) => x.rule)).toEqual(['LOW_BATTERY']);
  });

  it('ignores a cleared fall and ordinary motion', () => {
    const r1 = evaluate(emptyHomeState(), logged('h1-fall', { type: 'fall', ts: T, state: 'cleared' }), ctx);
    const r2 = evaluate(
      r1.state,
      logged('h1-m', { type: 'motion', ts: T, state: 'active', room: 'living' }),
      ctx,
    );
    expect([...r1.triggers, ...r2.triggers]).toEqual([]);
  });
});
