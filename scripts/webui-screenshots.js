// Photographs the Temporal Web UI for docs/webui.md; scripts/webui-screenshots.sh
// starts the lab and a rollout and runs this with:
//   PLAYWRIGHT  path to the playwright-core package
//   UI_URL      the Web UI, RUN_ID the rollout to show (workflow rollout-lab)
//   OUT         where the PNGs go, CHROMIUM the browser, USER_DATA_DIR a fresh profile dir
// It clicks what docs/webui.md tells an operator to click, so a UI that moved
// its buttons fails here rather than leaving docs/webui.md wrong.
const { chromium } = require(process.env.PLAYWRIGHT);
const path = require('path');

const ui = process.env.UI_URL;
const run = process.env.RUN_ID;
const out = process.env.OUT;
const view = 'dnsroll lab';
const query = 'WorkflowType="RolloutWorkflow" AND Fleet="lab"';

async function main() {
  // The flags that work on a host without network or GPU; a fresh profile
  // so no earlier columns or views leak in.
  const browser = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
    executablePath: process.env.CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  page.setDefaultTimeout(30000);

  // 1. Columns: the gear under the table ("Configure Columns"), then + on
  // Phase and Revision under "Custom Search Attributes"; Run ID and Type go.
  await page.goto(`${ui}/namespaces/default/workflows`, { waitUntil: 'networkidle' });
  await page.locator('.group:has(span:text-is("Configure Columns")) button').first().click();
  const item = (name, action) => page.getByTestId(`orderable-list-item-${name}-${action}-button`);
  for (const name of ['Run ID', 'Type']) await item(name, 'remove').click();
  for (const name of ['Phase', 'Revision']) await item(name, 'add').click();
  await page.getByTestId('drawer-close-button').click();

  // 2. The saved view, made by its link (?query=...&savedQuery=NAME), the
  // same link docs/webui.md gives.
  await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}&savedQuery=${encodeURIComponent(view)}`,
    { waitUntil: 'networkidle' });
  await page.getByText(view, { exact: true }).first().waitFor();
  await page.getByRole('columnheader', { name: 'Revision' }).waitFor();
  await shot(page, 'rollouts-list.png', { height: 560 });

  // 3. The rollout's labelled steps: the User Metadata tab lists the
  // workflow's summary and every activity by its summary.
  const base = `${ui}/namespaces/default/workflows/rollout-lab/${run}`;
  await page.setViewportSize({ width: 1400, height: 1250 });
  await page.goto(`${base}/user-metadata`, { waitUntil: 'networkidle' });
  await page.getByText('FlipLoadBalancer lb1 → ', { exact: false }).first().waitFor();
  await shot(page, 'rollout-steps.png', {});

  // 4. The timeline, oldest first and at full height: each bar is labelled
  // "Activity • summary".
  await page.setViewportSize({ width: 1400, height: 1600 });
  await page.goto(`${base}/history`, { waitUntil: 'networkidle' });
  await page.getByRole('button', { name: 'Descending' }).click();
  await page.getByRole('button', { name: 'Minimized' }).click();
  await page.getByText('RenameServer ns2-next', { exact: false }).first().waitFor();
  await page.mouse.move(0, 0); // no tooltip over the picture
  await page.waitForTimeout(1000);
  const list = await page.getByRole('button', { name: 'Compact' }).boundingBox();
  await shot(page, 'rollout-timeline.png', { height: Math.round(list.y) - 12 });

  await browser.close();
}

async function shot(page, name, { height }) {
  const size = page.viewportSize();
  const file = path.join(out, name);
  await page.screenshot({ path: file, clip: { x: 0, y: 0, width: size.width, height: height || size.height } });
  console.error(`webui-screenshots: wrote ${file}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
