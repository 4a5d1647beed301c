// Draw a QR code on a canvas with whole-pixel modules: a blurred edge between
// modules is what makes a phone screen hard to scan at a till.
import { encode } from './vendor/uqr/index.mjs';

export const QUIET_ZONE = 4; // modules, as the standard asks and cheap scanners need

// `maxCss` is the largest side the code may take on screen, in CSS pixels.
export function drawQr(canvas, text, maxCss) {
  // The DR1 text is all QR-alphanumeric, so uqr picks alphanumeric mode.
  const qr = encode(text, { ecc: 'M', border: QUIET_ZONE });
  const dpr = window.devicePixelRatio || 1;
  const module = Math.max(1, Math.floor((maxCss * dpr) / qr.size));
  const side = module * qr.size;
  canvas.width = side;
  canvas.height = side;
  canvas.style.width = `${side / dpr}px`;
  canvas.style.height = `${side / dpr}px`;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, side, side);
  ctx.fillStyle = '#000';
  qr.data.forEach((row, y) => {
    row.forEach((dark, x) => {
      if (dark) ctx.fillRect(x * module, y * module, module, module);
    });
  });
  canvas.dataset.version = String(qr.version);
  canvas.dataset.modules = String(qr.size - 2 * QUIET_ZONE);
  canvas.dataset.length = String(text.length);
  return qr.version;
}
