/** Debian's Chromium driven by playwright-core (never a downloaded browser). */
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Headless and quiet: no sandbox (root in CI), no GPU, none of the background calls a closed network refuses. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

export const WALL = { width: 1920, height: 1080 };
export const PHONE = { width: 360, height: 740 };

/** A fresh browser context logged in through the login form, as a person would. */
export async function loggedInPage(
  browser: Browser,
  baseUrl: string,
  username: string,
  password: string,
  viewport: { width: number; height: number } = WALL,
): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(baseUrl);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('main');
  return page;
}
