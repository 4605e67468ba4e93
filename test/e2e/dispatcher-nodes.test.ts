/**
 * CLU-08 on the dispatch screen in Debian's Chromium: two dispatcher processes (ROLE=dispatcher ×2) share
 * four communities on a real PostgreSQL (leases TTL 3 s, renewed every 1 s), and the screen served by one
 * of them shows in its "Dispatcher nodes" panel both nodes with how many communities each holds; after the
 * other is killed (`kill -9`), the survivor holding all four, and the killed node as down. The screen is
 * in its default language (Chinese).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../cluster/processes.ts';
import { eventually, TEST_PASSWORD } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { launchBrowser, loggedInPage, WALL } from './browser.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const COMMUNITIES = ['c1', 'c2', 'c3', 'c4'];
/** Generous: two service processes and Chromium on a busy two-core machine. */
const WAIT_MS = 60_000;

describe.skipIf(pgBackend.skip)(`the dispatcher nodes panel in Chromium on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    [cluster, browser] = await Promise.all([
      startCluster({
        grids: 4,
        householdsPerGrid: 1,
        shape: (plan) =>
          plan.grids.forEach((g, i) => {
            g.community = COMMUNITIES[i]!;
          }),
        gateways: 0,
        dispatchers: ['d1', 'd2'],
        env: {
          LEASE_TTL_MS: '3000',
          LEASE_RENEW_MS: '1000',
          HEALTH_CHECK_MS: '300',
          CLUSTER_POLL_MS: '500',
        },
      }),
      launchBrowser(),
    ]);
  }, 120_000);
  afterAll(async () => {
    await page?.context().close();
    await browser?.close();
    await cluster?.stop();
  });

  /** The panel's line of each live node, by INSTANCE_ID: its community count and its text. */
  const lines = async () => {
    const items = page.locator('[data-testid=cluster] li[data-instance]');
    const out = new Map<string, { communities: number; text: string }>();
    for (const li of await items.all()) {
      const id = (await li.getAttribute('data-instance'))!.split('/')[0]!;
      out.set(id, {
        communities: Number(await li.getAttribute('data-communities')),
        text: (await li.innerText()).trim(),
      });
    }
    return out;
  };
  /** The communities named on a node's line. */
  const named = (text: string) => COMMUNITIES.filter((c) => new RegExp(`\\b${c}\\b`).test(text));

  it('lists both nodes with their community counts, then the survivor holding every community after the other is killed', async () => {
    const d1 = cluster.dispatchers.get('d1')!;
    page = await loggedInPage(browser, cluster.base(d1), 'dispatcher', TEST_PASSWORD, WALL);
    await page.waitForSelector('main.dispatch');
    await page.locator('[data-testid=cluster]').waitFor({ timeout: WAIT_MS });

    // Two communities each (CLU-08's even split), the page's own node marked, each community on one line.
    const split = await eventually(
      async () => {
        const l = await lines();
        return l.get('d1')?.communities === 2 && l.get('d2')?.communities === 2 && l.size === 2
          ? l
          : undefined;
      },
      WAIT_MS,
      'd1 and d2 with two communities each on the panel',
    );
    expect(split.get('d1')!.text).toMatch(/^d1 \(本节点\) · 2 个社区: /);
    expect(split.get('d2')!.text).toMatch(/^d2 · 2 个社区: /);
    const first = named(split.get('d1')!.text);
    const second = named(split.get('d2')!.text);
    expect(first).toHaveLength(2);
    expect(second).toHaveLength(2);
    expect([...first, ...second].sort()).toEqual(COMMUNITIES);
    expect(await page.locator('[data-testid=cluster] [data-gone]').count()).toBe(0);

    // d2 is killed: once its leases expire d1 takes its communities, and the panel follows live.
    await cluster.dispatchers.get('d2')!.kill();
    const after = await eventually(
      async () => {
        const l = await lines();
        // No community left without a holder ("held by no node") either.
        const free = await page.locator('[data-testid=cluster] p.warn').count();
        return l.size === 1 && l.get('d1')?.communities === 4 && free === 0 ? l : undefined;
      },
      WAIT_MS,
      'd1 alone, holding all four communities, and none free on the panel',
    );
    expect(after.get('d1')!.text).toMatch(/^d1 \(本节点\) · 4 个社区: /);
    expect(named(after.get('d1')!.text)).toEqual(COMMUNITIES);
    // The node that went away is shown as down, not just left out.
    await expect(page.locator('[data-testid=cluster] [data-gone=d2]').innerText()).resolves.toMatch(
      /^d2 · 已离线/,
    );
    // The panel says what the lease table says.
    const held = await cluster.db.query(
      `SELECT community, holder FROM community_leases
        WHERE expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
    );
    const holders = new Map(held.rows.map((r) => [String(r.community), String(r.holder).split('/')[0]]));
    for (const c of COMMUNITIES) expect(holders.get(c), c).toBe('d1');
  }, 180_000);
});
