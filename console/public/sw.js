/*
 * Guardian 365 service worker (NOTIFY-03): shows an alert's push message as a notification that stays
 * until acted on, vibrates, names the rule and the household, and opens the alert on a tap. It tells the
 * service that the notice reached this phone (a delivery receipt for the dispatch room's alert panel).
 * Plain JavaScript served as is: a service worker must be a script of its own at the site's root.
 */
const FALLBACK = { title: '365 云守护', body: '', url: '/#/respond', alertId: null, raisedAt: Date.now() };

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let m = FALLBACK;
  try {
    m = { ...FALLBACK, ...event.data.json() };
  } catch {
    m = { ...FALLBACK, body: event.data ? event.data.text() : '' };
  }
  event.waitUntil(
    (async () => {
      await self.registration.showNotification(m.title, {
        body: m.body,
        // One notification per alert: a repeat (escalation, re-send) replaces it and rings again.
        tag: m.alertId ?? 'g365',
        renotify: true,
        requireInteraction: true,
        vibrate: [500, 200, 500, 200, 500],
        icon: '/icon-192.png',
        badge: '/icon-192.png',
        timestamp: m.raisedAt,
        data: { url: m.url, alertId: m.alertId },
      });
      if (m.alertId)
        await fetch('/api/push/receipts', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ alertId: m.alertId }),
        }).catch(() => {});
    })(),
  );
});

/** Opens the alert: an open console window is focused and told where to go, or a new one is opened. */
async function openAlert(data) {
  const url = new URL(data?.url || '/#/respond', self.location.origin).href;
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const w of windows) {
    if (new URL(w.url).origin !== self.location.origin) continue;
    await w.focus().catch(() => {}); // focusing is allowed only for a real tap
    w.postMessage({ type: 'g365:open', url });
    return;
  }
  await self.clients.openWindow(url);
}

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(openAlert(event.notification.data));
});

// No browser API clicks a system notification, so the end-to-end test asks the worker to act on one of
// its own notifications exactly as a tap would (same handler); it can only open this site's own pages.
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'g365:tap') return;
  event.waitUntil(
    (async () => {
      const [n] = await self.registration.getNotifications({ tag: event.data.tag });
      if (!n) return;
      n.close();
      await openAlert(n.data);
    })(),
  );
});
