// Renders the app's PNG icons from its SVG drawings (device-app/src/icons/*.svg) with headless Chromium:
//   node device-app/render-icons.ts
// The PNGs are committed (Android and iOS want PNG icons for the Home Screen); run this again after changing a drawing.
import { readFile, writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { chromiumPath } from '../test/browser/support/chromium.ts';

const ICONS = new URL('./src/icons/', import.meta.url);
const OUTPUTS: [svg: string, png: string, size: number][] = [
  ['icon.svg', 'icon-192.png', 192],
  ['icon.svg', 'icon-512.png', 512],
  ['icon-maskable.svg', 'icon-maskable-512.png', 512],
];

const executablePath = chromiumPath();
if (!executablePath) throw new Error('no Chromium found (set CHROMIUM_PATH or install chromium)');
const browser = await chromium.launch({ executablePath });
try {
  for (const [svg, png, size] of OUTPUTS) {
    const page = await browser.newPage({ viewport: { width: size, height: size } });
    const drawing = await readFile(new URL(svg, ICONS), 'utf8');
    await page.setContent(drawing.replace('<svg ', `<svg width="${size}" height="${size}" `));
    await page.addStyleTag({ content: 'html,body{margin:0;background:transparent} svg{display:block}' });
    await writeFile(new URL(png, ICONS), await page.screenshot({ omitBackground: true }));
    await page.close();
    console.log(`${png} (${size}×${size})`);
  }
} finally {
  await browser.close();
}
