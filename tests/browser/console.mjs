// Drives the web console in Debian's Chromium, as the people of a hot-work permit would:
// the contractor applies, four departments sign in turn, and a wrong-role attempt is refused
// on the way. Usage: node console.mjs <base url> <screenshot folder>. Exit 0 when every
// check holds; 1 with the failed check (and a screenshot of the page) otherwise.
// tests/browser.rs starts the server and runs this; `npm ci` in this folder installs it.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'fs';
import { join } from 'path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node console.mjs <base url> <screenshot folder>');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.SOPFLOW_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale: 'zh-CN' });
context.setDefaultTimeout(20000);
const page = await context.newPage();
let step = 'start';

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(name, fullPage = true) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
}

/// Clicks a submit button and waits for the answer to the form's POST; returns its status.
async function submit(button, path) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    button.click(),
  ]);
  await page.waitForLoadState('load');
  return response.status();
}

async function signIn(user, password = 'demo') {
  step = `sign in as ${user}`;
  await page.goto(`${base}/login`);
  await page.fill('#user', user);
  await page.fill('#password', password);
  const status = await submit(page.locator('#signin'), '/login');
  return status;
}

async function signOut() {
  step = 'sign out';
  await submit(page.locator('#logout'), '/logout');
  check(new URL(page.url()).pathname === '/login', `signing out lands on ${page.url()}`);
}

async function stateOf() {
  return page.locator('#state-title').getAttribute('data-state');
}

/// Fires `event` from my actions on the instance page, filling `fields` (name -> text or
/// true for a checkbox); returns the status of the POST.
async function act(id, event, fields = {}, comment = '') {
  step = `${event} on ${id}`;
  const form = page.locator(`#my-actions form.action[data-event="${event}"]`);
  check(await form.count() === 1, `the form of ${event} is among my actions`);
  for (const [name, value] of Object.entries(fields)) {
    if (value === true) await form.locator(`input[type=checkbox][name="f.${name}"]`).check();
    else await form.locator(`[name="f.${name}"]`).fill(value);
  }
  if (comment) await form.locator('textarea[name=comment]').fill(comment);
  return submit(form.locator('button[type=submit]'), `/instances/${id}/fire`);
}

async function openInstance(id) {
  await page.goto(`${base}/instances/${id}`);
  check(await page.locator('#state-title').count() === 1, `instance ${id} opens`);
}

/// Signs in, finds the instance in the inbox, opens it and takes the step.
async function approveFromInbox(user, id, event, expected, fields = {}) {
  await signIn(user);
  step = `${user}'s inbox`;
  const row = page.locator(`#tasks tr[data-instance="${id}"]`);
  check(await row.count() === 1, `${user}'s inbox lists ${id}`);
  if (user === 'li') await shot('inbox-li', false);
  await Promise.all([page.waitForURL(`**/instances/${id}`), row.locator('a').first().click()]);
  const status = await act(id, event, fields);
  check(status === 303, `${user} ${event}: HTTP ${status}`);
  check(await page.locator('#flash').count() === 1, `${user} ${event}: a success message`);
  const state = await stateOf();
  check(state === expected, `${user} ${event}: state ${state}, expected ${expected}`);
  console.log(`ok: ${user} ${event} -> ${state}`);
  await signOut();
}

try {
  // A stranger is sent to the sign-in page, which lists the demo users on this machine.
  step = 'sign-in page';
  await page.goto(`${base}/`);
  check(new URL(page.url()).pathname === '/login', `an anonymous visit lands on ${page.url()}`);
  check(await page.locator('#demo-users tr[data-user="wang"]').count() === 1, 'the demo users are listed');
  await shot('login', false);

  // A wrong password is refused, with a message.
  const refused = await signIn('wang', 'not-the-password');
  check(refused === 401, `a wrong password answers ${refused}`);
  check(await page.locator('#signin-error').count() === 1, 'a wrong password shows a message');

  // The contractor starts a permit and submits the letter.
  check(await signIn('wang') === 303, 'wang signs in');
  step = 'start a hot-work permit';
  check(await page.locator('#whoami').count() === 1, 'the top bar names the user');
  await page.selectOption('#start-workflow', 'hot_work_permit');
  await page.fill('#start-key', 'HW-2026-031');
  check(await submit(page.locator('#start-form button[type=submit]'), '/instances') === 303, 'the start is accepted');
  const id = new URL(page.url()).pathname.split('/').pop();
  check(id.startsWith('hot_work_permit-'), `the start opens the instance (at ${page.url()})`);
  check(await stateOf() === 'drafted', 'a new permit is drafted');
  console.log(`ok: wang started ${id}`);

  // The seal box left unticked: refused, and the page says what to do in the form's words.
  step = 'a refusal in the clerk\'s words';
  const unsealed = await act(id, 'submit', {
    notification_letter: 'HW-2026-031',
    operator_certificate: 'T-4411',
  });
  check(unsealed === 422 || unsealed === 409 || unsealed === 400, `an unsealed letter answers ${unsealed}`);
  const why = page.locator('#refusal');
  check(await why.getAttribute('data-code') === 'guard_failed', 'the refusal is guard_failed');
  check((await why.innerText()).includes('请勾选:申请单位已加盖鲜章'), `the banner names the missing seal: ${await why.innerText()}`);
  check(await stateOf() === 'drafted', 'nothing moved');
  await openInstance(id);
  console.log('ok: wang submit without the seal refused: 请勾选:申请单位已加盖鲜章');

  const submitted = await act(id, 'submit', {
    notification_letter: 'HW-2026-031',
    applicant_seal: true,
    operator_certificate: 'T-4411',
  });
  check(submitted === 303, `submit: HTTP ${submitted}`);
  check(await stateOf() === 'security_review', 'the permit goes to 秩序维护部初审');
  console.log('ok: wang submit -> security_review');

  // The contractor tries to approve their own permit through 其他操作: the engine refuses,
  // and nothing moves.
  step = 'wrong role';
  check(await page.locator('#my-actions form.action[data-event="approve"]').count() === 0, 'wang may not approve');
  await page.locator('#other-actions > summary').click();
  const other = page.locator('#other-actions form.action[data-event="approve"]');
  check(await other.count() === 1, '其他操作 offers approve');
  const wrong = await submit(other.locator('button[type=submit]'), `/instances/${id}/fire`);
  check(wrong === 403, `a wrong-role approve answers ${wrong}`);
  const banner = page.locator('#refusal');
  check(await banner.getAttribute('data-code') === 'role_not_allowed', 'the refusal banner names role_not_allowed');
  const said = await banner.innerText();
  check(said.includes('须由秩序维护部办理') && !/role_not_allowed|order_dept|`/.test(said), `the banner says who may, by title: ${said}`);
  check(await stateOf() === 'security_review', 'a refused step changes nothing');
  await shot('refused');
  console.log('ok: wang approve refused: role_not_allowed');
  await signOut();

  await approveFromInbox('li', id, 'approve', 'cs_review');
  await approveFromInbox('zhou', id, 'approve', 'gm_review');
  await approveFromInbox('chen', id, 'approve', 'signed');
  await approveFromInbox('zhao', id, 'affix_seal', 'effective');
  await approveFromInbox('zhou', id, 'distribute', 'distributed', { copy_to_applicant: true, copy_to_order_dept: true, archive_reference: 'KF-2026-031' });

  // The finished permit, as anyone sees it.
  await signIn('audit');
  step = 'the finished permit';
  await openInstance(id);
  const title = (await page.locator('#state-title').innerText()).trim();
  check(title === '已签发,原件存档', `the final state's title is ${title}`);
  check(await page.locator('#diagram svg g#state-distributed.current').count() === 1, 'the diagram highlights 已签发,原件存档');
  check(await page.locator('#finished').count() === 1, 'the instance is marked finished');
  for (const [actor, role] of [['li', 'order_dept'], ['zhou', 'cs_dept'], ['chen', 'project_gm'], ['zhao', 'admin_dept']]) {
    const rows = page.locator(`#approval-chain tr[data-actor="${actor}"][data-role="${role}"]`);
    check(await rows.count() >= 1, `the approval chain lists ${actor} as ${role}`);
  }
  check((await page.locator('#approval-chain').innerText()).includes('秩序维护部'), 'the chain shows role titles');
  await shot('instance');
  console.log('ok: the final page shows 已签发,原件存档 and the approval chain');

  // The auditor verifies the store and downloads the rows.
  step = 'audit';
  await page.goto(`${base}/audit`);
  check(await submit(page.locator('#verify-button'), '/audit/verify') === 200, 'the store is verified');
  check(await page.locator('#verify-result').getAttribute('data-problems') === '0', 'the store is intact');
  await shot('audit', false);
  const csv = await page.request.get(`${base}/audit/export.csv?workflow=hot_work_permit`);
  check(csv.status() === 200, `the export answers ${csv.status()}`);
  const text = (await csv.body()).toString('utf8');
  check(text.startsWith('\ufeffinstance,workflow'), 'the CSV starts with a BOM and the header');
  check(text.includes(id) && text.includes('秩序维护部'), 'the CSV holds the permit in business words');
  console.log('ok: audit verify and CSV export');
  await browser.close();
  console.log('console: all checks passed');
} catch (err) {
  console.error(`FAILED at step "${step}": ${err.message}`);
  console.error(`page: ${page.url()}`);
  try { await shot('failure'); } catch {}
  await browser.close();
  process.exit(1);
}
