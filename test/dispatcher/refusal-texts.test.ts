/**
 * WORDS-03: every refusal of the API carries `text` in zh-CN and English (the console shows the one of its
 * language): a household not found, a role that may not, an alert action its state does not allow, and a
 * request without a login, through the real service on a real SQLite file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../kernel/clock.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';

type Refusal = { error: string; message: string; text: { zh: string; en: string } };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('refusals of the API', () => {
  it('say themselves in Chinese and in English', { timeout: 60_000 }, async () => {
    h = await startHarness({ clock: new SystemClock(), grids: 1, perGrid: 1 });
    const worker = await login(h.baseUrl, 'g1-worker');
    const dispatcher = await login(h.baseUrl, 'dispatcher');
    const hanzi = /\p{Script=Han}/u;

    const missing = await apiCall<Refusal>(h.baseUrl, worker, 'GET', '/api/households/home-9-99/timeline');
    expect(missing.status).toBe(404);
    expect(missing.body.text.zh).toMatch(hanzi);
    expect(missing.body.text.zh).toContain('找不到');
    expect(missing.body.text.en).toBe(missing.body.message);

    const forbidden = await apiCall<Refusal>(h.baseUrl, worker, 'GET', '/api/reports/sla');
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.text.zh).toContain('无权');
    expect(forbidden.body.text.en).toContain('your role may not do this');

    const anonymous = await apiCall<Refusal>(h.baseUrl, null, 'GET', '/api/alerts');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.text).toEqual({ zh: '请先登录', en: 'log in first' });

    const noAlert = await apiCall<Refusal>(h.baseUrl, dispatcher, 'GET', '/api/alerts/al_nothing');
    expect(noAlert.status).toBe(404);
    expect(noAlert.body.text.zh).toMatch(hanzi);
    expect(noAlert.body.text.en).toBe('no alert al_nothing');

    // fastify's own refusals: a body that is not JSON.
    const badJson = await fetch(`${h.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"username": ',
    });
    expect(badJson.status).toBe(400);
    const bad = (await badJson.json()) as Refusal;
    expect(bad.text.zh).toBe('请求内容不是有效的 JSON');
    expect(bad.text.en).toBe(bad.message);
  });
});
