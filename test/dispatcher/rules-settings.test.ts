/** Rule thresholds: SPEC §5 defaults, the deployment's RULES config, the household's routine profile. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../dispatcher/config.ts';
import { resolveSettings } from '../../dispatcher/rules/settings.ts';
import { household } from './rules-fixtures.ts';

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

describe('rule settings', () => {
  it('uses the SPEC §5 defaults when nothing is configured', () => {
    const s = resolveSettings(household(), loadConfig({}).RULES);
    expect([s.inactivityMs, s.morningGraceMs, s.bathroomMs, s.doorOpenMs, s.nightExitMs, s.silentMs]).toEqual(
      [240, 90, 40, 30, 10, 15].map((m) => m * 60_000),
    );
    expect(s.lowBatteryPercent).toBe(15);
    expect(s.night).toEqual({ start: 22 * 60, end: 6 * 60 });
  });

  it('lets the deployment override a threshold, and the household override the deployment', () => {
    const rules = loadConfig({ RULES: '{"thresholds":{"INACTIVITY":180,"DOOR_LEFT_OPEN":20}}' }).RULES;
    const plain = resolveSettings(household(), rules);
    expect(plain.inactivityMs).toBe(180 * 60_000);
    expect(plain.doorOpenMs).toBe(20 * 60_000);
    const own = resolveSettings(household({ routine: { thresholds: { INACTIVITY: 120 } } }), rules);
    expect(own.inactivityMs).toBe(120 * 60_000);
    expect(own.doorOpenMs).toBe(20 * 60_000);
  });

  it('stops the start with a message naming RULES and the bad field', () => {
    expect(problems({ RULES: '{"thresholds":{"INACTIVITY":-5}}' }).join()).toMatch(
      /^RULES\.thresholds\.INACTIVITY=/,
    );
    expect(problems({ RULES: '{"thresholds":{"NAPPING":30}}' }).join()).toMatch(/^RULES\.thresholds/);
    expect(problems({ RULES: 'not json' }).join()).toMatch(/^RULES/);
  });
});
