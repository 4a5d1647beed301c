// Reading QR codes: the browser's own BarcodeDetector where it has one
// (Android, ChromeOS, macOS), else zxing-wasm, vendored with its .wasm so the
// app never fetches anything from another host.

let zxing = null;

async function loadZxing() {
  if (zxing === null) {
    zxing = import('./vendor/zxing/reader/index.js').then((m) => {
      // By default zxing-wasm fetches its .wasm from a CDN: point it here.
      m.setZXingModuleOverrides({
        locateFile: (path) => new URL(`./vendor/zxing/${path}`, import.meta.url).href,
      });
      return m;
    });
  }
  return zxing;
}

let native;

async function nativeDetector() {
  if (native !== undefined) return native;
  native = null;
  if ('BarcodeDetector' in globalThis) {
    try {
      const formats = await globalThis.BarcodeDetector.getSupportedFormats();
      if (formats.includes('qr_code')) native = new globalThis.BarcodeDetector({ formats: ['qr_code'] });
    } catch {
      native = null;
    }
  }
  return native;
}

export async function backend() {
  return (await nativeDetector()) ? 'BarcodeDetector' : 'zxing-wasm';
}

// As verifier/scan.py: a fast pass first (QR only, upright, full size, dark
// on light: a screenshot or a phone screen held still), then zxing's full
// search for a poor photo.  A camera frame gets only the fast pass: the next
// frame is a better retry than a slow search.
const FAST = {
  formats: ['QRCode'], tryHarder: false, tryRotate: false, tryInvert: false,
  tryDownscale: false, maxNumberOfSymbols: 1,
};
const FULL = { formats: ['QRCode'], tryHarder: true, maxNumberOfSymbols: 4 };

// The texts of the QR codes in an image (Blob/File, ImageData or canvas).
export async function decodeImage(source, { fallback = true } = {}) {
  const det = await nativeDetector();
  if (det) {
    const bitmap = source instanceof Blob ? await createImageBitmap(source) : source;
    const found = await det.detect(bitmap);
    return found.map((b) => b.rawValue).filter(Boolean);
  }
  const m = await loadZxing();
  const texts = (found) => found.filter((b) => b.isValid && b.text).map((b) => b.text);
  let image = source;
  if (source instanceof Blob) {
    // Decode the file once, not once per pass.
    const bitmap = await createImageBitmap(source);
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    image = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  }
  const fast = texts(await m.readBarcodes(image, FAST));
  if (fast.length || !fallback) return fast;
  return texts(await m.readBarcodes(image, FULL));
}

// Camera scanning: calls onText for each new text, until stop() is called.
// The same text is ignored for `quiet` ms: a phone held in front of the
// camera must not be scanned twice (the second scan would be a replay).
export async function startCamera(video, onText, { quiet = 4000 } = {}) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: 'environment', width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: false,
  });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let running = true;
  let last = '';
  let lastAt = 0;
  const tick = async () => {
    if (!running) return;
    try {
      if (video.videoWidth) {
        let texts;
        if (await nativeDetector()) {
          texts = (await native.detect(video)).map((b) => b.rawValue);
        } else {
          canvas.width = video.videoWidth;
          canvas.height = video.videoHeight;
          ctx.drawImage(video, 0, 0);
          texts = await decodeImage(ctx.getImageData(0, 0, canvas.width, canvas.height), { fallback: false });
        }
        const text = texts[0];
        const now = performance.now();
        if (text && (text !== last || now - lastAt > quiet)) {
          last = text;
          lastAt = now;
          onText(text);
        } else if (text) {
          lastAt = now;
        }
      }
    } catch {
      // A frame that cannot be read is just skipped.
    }
    if (running) setTimeout(tick, 120);
  };
  tick();
  return () => {
    running = false;
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
    video.hidden = true;
  };
}
