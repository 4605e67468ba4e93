/**
 * The one vocabulary (WORDS-01, WORDS-02): every table has both languages with the same keys, an
 * evidence line and a validation problem read in zh-CN name their field and carry no English, and each
 * thing has one name on every screen (紧急求助 for SOS, 入户门 for the entrance).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dicts } from '../../console/src/i18n.ts';
import * as words from '../../dispatcher/words.ts';

const root = join(import.meta.dirname, '..', '..');

/** Every exported `Record<Lang, …>` table of the vocabulary, and the console's own words. */
type Table = Record<string, Record<string, string>>;
const tables: [string, Table][] = [
  ...Object.entries(words as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'object' && v !== null && 'zh' in v && 'en' in v && !Array.isArray(v))
    .map(([name, v]): [string, Table] => [name, v as Table]),
  ['console dicts', dicts as unknown as Table],
];

describe('the vocabulary', () => {
  it('has every key in both languages, in both directions, and no empty word', () => {
    expect(tables.map(([n]) => n)).toEqual(
      expect.arrayContaining(['RULE_LABELS', 'KIND_LABELS', 'FIELD_LABELS']),
    );
    const gaps: string[] = [];
    for (const [name, t] of tables) {
      for (const [a, b] of [
        ['zh', 'en'],
        ['en', 'zh'],
      ] as const)
        for (const key of Object.keys(t[a]!))
          if (!(key in t[b]!) || !t[b]![key]) gaps.push(`${name}: "${key}" has no ${b} word`);
    }
    expect(gaps).toEqual([]);
  });

  it('says the audit log’s actions in words, and an unknown one as recorded', () => {
    expect(words.auditActionText('zh', 'device.rotate_secret')).toBe('设备 · 更换密钥');
    expect(words.auditActionText('en', 'household.read_access_notes')).toBe('Household · access notes read');
    expect(words.auditActionText('zh', 'login')).toBe('登录');
    expect(words.auditActionText('zh', 'something.new')).toBe('something.new');
  });

  it('declares each evidence line with the same slots in both languages', () => {
    const slots = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const t of words.EVIDENCE_TEMPLATES) expect(slots(t.zh), t.en).toEqual(slots(t.en));
  });

  it('reads the rules’ evidence lines in Chinese, rooms and durations included', () => {
    expect(words.evidenceText('zh', 'fall detected in bathroom (80%)')).toBe('卫生间检测到跌倒（80%）');
    expect(words.evidenceText('zh', 'fall detected in bedroom')).toBe('卧室检测到跌倒');
    expect(words.evidenceText('zh', 'help button pressed in entrance')).toBe('入户门按下了紧急求助按钮');
    expect(words.evidenceText('zh', 'resident moved after the fall (living, 4 h 05 min later)')).toBe(
      '跌倒后老人有活动（客厅，4小时05分后）',
    );
    expect(words.evidenceText('zh', 'home-1-door offline since 09:12 (keep-alive timeout)')).toBe(
      'home-1-door 自 09:12 起离线（心跳超时）',
    );
    expect(words.evidenceText('zh', 'INACTIVITY held back: motion sensor m1 offline since 09:00')).toBe(
      '长时间无活动未告警：人体移动传感器 m1 自 09:00 起离线',
    );
    expect(words.evidenceText('en', 'fall detected in bathroom (80%)')).toBe(
      'fall detected in bathroom (80%)',
    );
    // A line the table does not know is shown as it came, never dropped.
    expect(words.evidenceText('zh', 'something new')).toBe('something new');
  });

  it('turns a zod problem into a sentence naming the field, in both languages', () => {
    const schema = z.strictObject({
      name: z.string().min(1),
      residents: z.array(z.strictObject({ phone: z.string().max(5) })),
      shift: z.enum(['day', 'night']),
    });
    const r = schema.safeParse({ name: '', residents: [{ phone: '1234567' }], shift: 'noon', colour: 1 });
    expect(r.success).toBe(false);
    const texts = r.error!.issues.map((i) => words.issueTexts(i as words.IssueFacts));
    expect(texts.map((t) => t.zh)).toEqual([
      '「姓名」不能为空',
      '「居民 1 · 电话」最多 5个字符',
      '「班次」应为以下之一：day、night',
      '「整行」含有未知字段：colour',
    ]);
    expect(texts.map((t) => t.en)).toEqual([
      'name: must not be empty',
      'residents 1 · phone: at most 5 characters',
      'shift: must be one of day, night',
      'the row: unknown field(s) colour',
    ]);
    const missing = z.object({ gridId: z.string() }).safeParse({});
    expect(words.issueTexts(missing.error!.issues[0] as words.IssueFacts)).toEqual({
      zh: '「网格」必填',
      en: 'grid: required',
    });
  });

  it('gives each thing one name on every screen: 紧急求助 for SOS, 入户门 for the entrance', () => {
    const sources = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? sources(p) : /\.tsx?$/.test(n) ? [p] : [];
      });
    const offenders: string[] = [];
    for (const f of [...sources(join(root, 'console/src')), ...sources(join(root, 'dispatcher'))]) {
      if (f.endsWith('rooms.ts')) continue; // the aliases an import maps to 入户门
      const src = readFileSync(f, 'utf8');
      if (/(?<!紧急)求助/.test(src)) offenders.push(`${f}: 求助 without 紧急`);
      if (/门口/.test(src)) offenders.push(`${f}: 门口`);
    }
    expect(offenders).toEqual([]);
    expect(words.RULE_LABELS.zh.SOS).toBe('紧急求助');
    expect(words.KIND_LABELS.zh.button).toBe('紧急求助按钮');
    expect(words.ROOM_LABELS.zh.entrance).toBe('入户门');
  });
});

describe('the figures say what they count', () => {
  it('gives the share over the alerts that met or missed the mark, and says apart those still inside it', () => {
    const today = {
      raised: 30,
      acceptedWithin3: 29,
      acceptDecided: 29,
      onSiteWithin15: 28,
      onSiteDecided: 30,
    };
    expect(words.slaShareDetail('en', 'accept', today)).toBe('29 / 29 due · 1 pending');
    expect(words.slaShareDetail('zh', 'onSite', today)).toBe('28 / 30 起');
  });
});

describe('a refusal in words (WORDS-03)', () => {
  it('says an action the alert state does not allow with the state in Chinese, and the detail in English', () => {
    expect(
      words.errorTexts('invalid_transition', 'cannot accept an alert that is resolved', {
        state: 'resolved',
      }),
    ).toEqual({
      zh: '告警当前为「处置完成」，不能执行此操作',
      en: 'cannot accept an alert that is resolved',
    });
    expect(words.errorTexts('conflict', 'username g1-worker is taken').zh).toBe(
      words.ERROR_LABELS.zh.conflict,
    );
    expect(words.errorTexts('some_new_code', 'something').zh).toBe('请求未能完成');
  });
});
