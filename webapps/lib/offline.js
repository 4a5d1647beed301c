// The service-worker half both apps share (classic script: a service worker
// loads it with importScripts, which every browser with service workers has).
// Each app's sw.js names its files; this caches them at install, drops the
// app's older caches at activation, and serves those files cache-first.
// Anything else (the issuer's endpoints, trust and status lists) goes to the
// network untouched, so nothing signed is ever answered from a stale cache.
function serveOffline({ app, version, precache }) {
  const cacheName = `dualres-${app}-${version}`;
  const scope = self.registration.scope;
  const urls = new Set(precache.map((p) => new URL(p, scope).href));
  const index = new URL('./', scope).href;

  self.addEventListener('install', (event) => {
    event.waitUntil(
      caches.open(cacheName)
        // 'reload': never fill the new cache from a stale HTTP cache entry.
        .then((cache) => cache.addAll(precache.map((p) => new Request(p, { cache: 'reload' }))))
        .then(() => self.skipWaiting()),
    );
  });

  self.addEventListener('activate', (event) => {
    event.waitUntil(
      caches.keys()
        .then((keys) => Promise.all(keys
          .filter((k) => k.startsWith(`dualres-${app}-`) && k !== cacheName)
          .map((k) => caches.delete(k))))
        .then(() => self.clients.claim()),
    );
  });

  self.addEventListener('fetch', (event) => {
    const req = event.request;
    if (req.method !== 'GET') return;
    const url = new URL(req.url);
    // A link with a query (…/wallet/?credential_offer_uri=…) still opens the
    // cached page; a fragment never reaches a service worker at all.
    const page = url.href.split(/[?#]/)[0];
    if (req.mode === 'navigate' && url.origin === self.location.origin
        && (page === index || page === `${index}index.html`)) {
      event.respondWith(caches.match(index).then((hit) => hit || fetch(req)));
      return;
    }
    const key = url.origin + url.pathname;
    if (!urls.has(key)) return;
    event.respondWith(caches.match(key).then((hit) => hit || fetch(req)));
  });
}
