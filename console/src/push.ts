/**
 * Lock-screen notices for the responder page (NOTIFY-03): registers the service worker (console/public/
 * sw.js, which also makes the page installable), asks for permission on a tap, subscribes this phone with
 * the deployment's VAPID key and hands the subscription to the service.
 */
import { api } from './api.ts';
import type { Lang } from './i18n.ts';

export type PushState = 'unsupported' | 'blocked' | 'off' | 'on';

const supported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

/** Registers the worker (at every visit: an updated sw.js takes over) and says where this phone stands. */
export async function setUpWorker(): Promise<PushState> {
  if (!('serviceWorker' in navigator)) return 'unsupported';
  // A tap on a notice while the page is open: the worker tells the page which alert to show.
  navigator.serviceWorker.addEventListener('message', (e: MessageEvent) => {
    const d = e.data as { type?: string; url?: string } | null;
    if (d?.type === 'g365:open' && d.url) location.href = d.url;
  });
  const reg = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  if (!supported()) return 'unsupported';
  if (Notification.permission === 'denied') return 'blocked';
  const sub = await reg.pushManager.getSubscription();
  if (sub) {
    // The service may have dropped it (rights ended, data restored): hand it over again.
    await api.pushSubscribe(sub.toJSON(), document.documentElement.lang.startsWith('en') ? 'en' : 'zh');
    return 'on';
  }
  return 'off';
}

/** Asks for permission (must follow a tap) and subscribes this phone. */
export async function enablePush(lang: Lang): Promise<PushState> {
  if (!supported()) return 'unsupported';
  if ((await Notification.requestPermission()) !== 'granted') return 'blocked';
  const reg = await navigator.serviceWorker.ready;
  const { publicKey } = await api.pushKey();
  const sub =
    (await reg.pushManager.getSubscription()) ??
    (await reg.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: fromBase64Url(publicKey),
    }));
  await api.pushSubscribe(sub.toJSON(), lang);
  return 'on';
}

function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(s.length / 4) * 4, '=');
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
