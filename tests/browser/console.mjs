// Drives the web console in Debian's Chromium, as the people of a hot-work permit would:
// the contractor applies, four departments sign in turn, and a wrong-role attempt is refused
// on the way; a refusal's page reloads without posting again; a goods request's start form
// checks its required fields before posting, and its deadline shows in the inbox; a
// renovation goes from the owner's application to its hot-work permit with only the demo
// users, each step found in the inbox and answered in Chinese, and the permit opens from the
// renovation's page by its title and number; the inbox and the instance page fit a 390 px
// phone; a clerk's pages in Chinese hold no engine words and no raw ids, the same pages in
// English follow the browser's language, and the language switch sets a cookie the next pages
// follow.
// Usage: node console.mjs <base url> <screenshot folder> [raw ids, comma-separated]. Exit 0
// when every check holds; 1 with the failed check (and a screenshot of the page) otherwise.
// tests/browser.rs starts the server and runs this; `npm ci` in this folder installs it.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'fs';
import { join } from 'path';

const [base, shots, idList = ''] = process.argv.slice(2);
// The role, field and event ids of the workflows driven here (tests/browser.rs reads them from
// the YAML): words a clerk must never read.
const rawIds = idList.split(',').filter((id) => id.length > 0);
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
async function submit(button, path, on = page) {
  const [response] = await Promise.all([
    on.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    button.click(),
  ]);
  await on.waitForLoadState('load');
  return response.status();
}

/// Signs `user` in on a phone-sized page of its own, and checks that nothing on each of
/// `paths` is wider than the screen: the page itself, and every visible card, table, form
/// and list (scrollWidth against clientWidth, and the right edge against the viewport).
async function phoneCheck(user, paths, prefix) {
  step = `${user} on a phone`;
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN', isMobile: true });
  phone.setDefaultTimeout(20000);
  const small = await phone.newPage();
  try {
    await small.goto(`${base}/login`);
    await small.fill('#user', user);
    await small.fill('#password', 'demo');
    check(await submit(small.locator('#signin'), '/login', small) === 303, `${user} signs in on a phone`);
    for (const [name, path] of paths) {
      step = `${user} on a phone: ${path}`;
      await small.goto(`${base}${path}`);
      const wide = await small.evaluate(() => {
        const out = [];
        const doc = document.documentElement;
        if (doc.scrollWidth > doc.clientWidth + 1) out.push(`the page: ${doc.scrollWidth} > ${doc.clientWidth}`);
        for (const el of document.querySelectorAll('main, header, .card, .columns, table, form, ul, ol, dl, .banner')) {
          const box = el.getBoundingClientRect();
          if (box.width === 0 && box.height === 0) continue; // not shown
          const what = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + String(el.className).split(' ').join('.') : ''}`;
          if (el.scrollWidth > el.clientWidth + 1) out.push(`${what}: ${el.scrollWidth} > ${el.clientWidth}`);
          if (box.right > doc.clientWidth + 1) out.push(`${what} ends at ${Math.round(box.right)} of ${doc.clientWidth}`);
        }
        return out;
      });
      check(wide.length === 0, `at 390 px, ${path} overflows: ${wide.join('; ')}`);
      await small.screenshot({ path: join(shots, `phone-${prefix}-${name}.png`), fullPage: true });
      console.log(`ok: ${path} fits 390 px`);
    }
  } finally {
    await phone.close();
  }
}

/// A page of its own for `user`, signed in, in a browser that asks for `locale`.
async function signedIn(user, locale) {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, locale });
  ctx.setDefaultTimeout(20000);
  const p = await ctx.newPage();
  await p.goto(`${base}/login`);
  await p.fill('#user', user);
  await p.fill('#password', 'demo');
  check(await submit(p.locator('#signin'), '/login', p) === 303, `${user} signs in (${locale})`);
  return { ctx, p };
}

/// What a Chinese-reading clerk must never see on a page: the engine's English, rhai, and the
/// YAML's ids as words.
function engineWords(text) {
  const found = [];
  for (const word of ['refused', 'guard', 'payload.', '`', 'system']) {
    if (text.toLowerCase().includes(word)) found.push(word);
  }
  for (const id of rawIds) {
    const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`).test(text)) found.push(id);
  }
  return found;
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

/// Signs `user` in and opens the instance from their inbox, as a clerk would find it.
async function openFromInbox(user, id) {
  check(await signIn(user) === 303, `${user} signs in`);
  step = `${user}'s inbox`;
  const row = page.locator(`#tasks tr[data-instance="${id}"]`);
  check(await row.count() === 1, `${user}'s inbox lists ${id}`);
  await Promise.all([page.waitForURL(`**/instances/${id}`), row.locator('a').first().click()]);
}

/// After a step: the page says in Chinese (no Latin letters, so no ids) what was done and
/// where the instance is now, the instance is in `expected`, and the page says who acts next
/// and on what (`nextWords`).
async function doneInChinese(user, event, expected, nextWords) {
  const flash = (await page.locator('#flash').innerText()).trim();
  check(/^已(提交“[^”]+”|发起),当前环节:.+。$/.test(flash) && !/[A-Za-z]/.test(flash), `${user} ${event}: the page says in Chinese what was done: ${flash}`);
  const state = await stateOf();
  check(state === expected, `${user} ${event}: state ${state}, expected ${expected}`);
  const next = await page.locator('#next').innerText();
  for (const words of nextWords) {
    check(next.includes(words), `${user} ${event}: the page says that next ${words}:\n${next}`);
  }
  console.log(`ok: ${user} ${event} -> ${state}: ${flash}`);
}

/// Takes `event` with `fields` from the inbox of `user` (see doneInChinese), then signs out.
async function stepInChinese(user, id, event, fields, expected, nextWords) {
  await openFromInbox(user, id);
  const status = await act(id, event, fields);
  check(status === 303, `${user} ${event}: HTTP ${status}`);
  await doneInChinese(user, event, expected, nextWords);
  await signOut();
}

/// Takes `event` with `fields`, which the workflow's rule refuses: the page says what to do
/// (`words`) in Chinese, and the instance stays in `state`.
async function refusedInChinese(user, id, event, fields, words, state) {
  const status = await act(id, event, fields);
  check(status === 303, `a refused ${event} redirects, not ${status}`);
  const said = (await page.locator('#refusal').innerText()).trim();
  check(said.includes(words) && said.includes('未写入任何记录') && !/[A-Za-z]/.test(said), `${user} ${event}: the refusal says what to do in Chinese: ${said}`);
  check(await stateOf() === state, `${user} ${event}: a refused step changes nothing`);
  console.log(`ok: ${user} ${event} refused: ${words}`);
}

/// A renovation from the customer service centre's briefing to the contractor's hot-work
/// permit, with the demo users alone: each person finds it in their inbox, takes their step
/// and reads in Chinese what was done and who acts next; two refusals say what to bring.
/// Returns the renovation's id and its permit's.
async function renovationToHotWork() {
  // 客户服务部 opens the file while briefing the owner: the start needs the unit and the
  // owner, so the full start form opens.
  check(await signIn('zhou') === 303, 'zhou signs in');
  step = 'zhou starts a renovation';
  await page.selectOption('#start-workflow', 'renovation_approval');
  check(await submit(page.locator('#start-form button[type=submit]'), '/instances') === 303, 'the start form opens');
  check(new URL(page.url()).pathname === '/start', `the renovation's start form: ${page.url()}`);
  await page.fill('#start-unit', 'B2-031');
  await page.fill('#start-owner_occupant', 'sun');
  check(await submit(page.locator('#start-form button[type=submit]'), '/instances') === 303, 'the renovation starts');
  const id = new URL(page.url()).pathname.split('/').pop();
  check(id.startsWith('renovation_approval-'), `the start opens the renovation (at ${page.url()})`);
  await doneInChinese('zhou', 'start', 'briefed', ['业户', '填写装修申报表,提交入场资料']);
  await signOut();

  // The owner applies, first without one of the documents.
  await openFromInbox('sun', id);
  step = 'sun applies';
  const application = {
    application_form: 'ZX-2026-031',
    renovation_plan: '施工装修方案-B2-031',
    contractor: 'wang',
    contractor_unit: '沙马精装',
    owner_authorisation: true,
    entry_notice_letter: true,
    site_manager_letter: true,
    tax_registration_copy: true,
    organisation_code_copy: true,
  };
  await refusedInChinese('sun', id, 'submit_application', application, '缺少入场资料:《营业执照》复印件', 'briefed');
  check(await act(id, 'submit_application', { ...application, business_licence_copy: true }) === 303, 'the complete application is posted');
  await doneInChinese('sun', 'submit_application', 'under_review', ['设施设备维护部', '提出审核意见:同意']);
  await signOut();

  await stepInChinese('he', id, 'approve_plan', { review_opinion: '同意' }, 'opinion_issued', ['客户服务部', '通告业户:审核通过']);
  await stepInChinese('zhou', id, 'notify_owner', {}, 'approved', ['业户', '装修施工单位']);
  await stepInChinese('sun', id, 'sign_undertaking', {}, 'approved', ['装修施工单位']);
  await stepInChinese('wang', id, 'sign_undertaking', {}, 'undertaking_signed', ['签署消防安全管理责任书']);
  await stepInChinese('wang', id, 'sign_undertakings', {
    fire_safety_responsibility_signed: true,
    management_agreement_signed: true,
    signatory_list_signed: true,
    fire_safety_rules_received: true,
  }, 'undertakings_signed', ['客户服务部', '缴纳装修有关费用']);

  // The fees, first short of the deposit.
  await openFromInbox('zhou', id);
  step = 'zhou takes the fees';
  await refusedInChinese('zhou', id, 'pay_fees', { amount_paid: '3000', fee_receipt: 'SJ-0319' }, '请缴足装修有关费用:5000 元', 'undertakings_signed');
  check(await act(id, 'pay_fees', { amount_paid: '5000', fee_receipt: 'SJ-0319' }) === 303, 'the fees are posted');
  await doneInChinese('zhou', 'pay_fees', 'fees_paid', ['物业服务中心']);
  await signOut();

  await stepInChinese('wei', id, 'issue_entry', {
    workers: '510104199001011234',
    pass_application_sealed: true,
    entry_notice_no: 'JC-031',
  }, 'in_progress', ['装修施工单位', '申请动火证']);
  await stepInChinese('wang', id, 'request_hot_work', {}, 'in_progress', ['装修施工单位']);

  // The contractor opens the permit from the renovation's page: it is listed by its
  // workflow's title and its readable number.
  check(await signIn('wang') === 303, 'wang signs in');
  step = 'the renovation\'s hot-work permit';
  await openInstance(id);
  const child = page.locator('#family li[data-workflow="hot_work_permit"] a');
  check(await child.count() === 1, 'the renovation lists one hot-work permit');
  const named = (await child.innerText()).trim();
  check(/^动火证审批 DH-\d{4}-\d{4}\b/.test(named), `the permit is named by its title and number: ${named}`);
  check(await page.locator('#family li[data-workflow="construction_pass"]').count() === 1, 'and the pass card of the one worker');
  await shot('renovation');
  await Promise.all([page.waitForURL('**/instances/hot_work_permit-*'), child.click()]);
  const permit = new URL(page.url()).pathname.split('/').pop();
  check((await page.locator('main h1').first().innerText()).trim() === '动火证审批', 'the permit page is headed by its title');
  const number = (await page.locator('#number').innerText()).trim();
  check(named.includes(number), `the permit's number ${number} is the one its renovation shows`);
  check((await page.locator('#state-title').innerText()).trim() === '填写动火告知函', 'the permit waits for the contractor\'s letter');
  const back = page.locator(`#family #parent a[href="/instances/${id}"]`);
  check(await back.count() === 1, 'the permit links back to its renovation');
  check((await back.innerText()).trim().startsWith('室内装饰装修办理'), `the link back reads the renovation's title: ${await back.innerText()}`);
  check(await page.locator('#my-actions form.action[data-event="submit"]').count() === 1, 'the contractor may submit the permit');
  const contractor = (await page.locator('#data tr[data-field="contractor"] td').innerText()).trim();
  check(contractor === '王工(装修施工单位)', `the permit names its contractor, not a user id: ${contractor}`);
  await shot('renovation-permit');
  console.log(`ok: wang opens ${permit} (${number}) from ${id}`);
  await signOut();
  return [id, permit];
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

  // Nothing is posted while a required field is empty: the browser checks it first.
  step = 'required fields checked in the form';
  const submitForm = page.locator('#my-actions form.action[data-event="submit"]');
  let posted = 0;
  const countPosts = (r) => { if (r.method() === 'POST') posted += 1; };
  page.on('request', countPosts);
  await submitForm.locator('button[type=submit]').click();
  await page.waitForTimeout(300);
  check(posted === 0, `an empty required field still posted (${posted})`);
  check(!(await submitForm.evaluate((f) => f.checkValidity())), 'the form is invalid while required fields are empty');
  check(await submitForm.locator('[name="f.notification_letter"][required]').count() === 1, 'the letter is marked required');
  console.log('ok: the browser holds a form with empty required fields');

  // The seal box left unticked: refused, and the page says what to do in the form's words.
  step = 'a refusal in the clerk\'s words';
  const unsealed = await act(id, 'submit', {
    notification_letter: 'HW-2026-031',
    operator_certificate: 'T-4411',
  });
  check(unsealed === 303, `a refused step redirects (post/redirect/get), not ${unsealed}`);
  const why = page.locator('#refusal');
  check(await why.getAttribute('data-code') === 'guard_failed', 'the refusal is guard_failed');
  check((await why.innerText()).includes('请勾选:申请单位已加盖鲜章'), `the banner names the missing seal: ${await why.innerText()}`);
  check(await stateOf() === 'drafted', 'nothing moved');
  check(await page.locator('#my-actions form.action[data-event="submit"] [name="f.notification_letter"]').inputValue() === 'HW-2026-031', 'what was typed is kept');

  // The page after the refusal is a GET page: reloading it posts nothing and shows it again.
  step = 'reload after a refusal';
  const url = new URL(page.url());
  check(url.pathname === `/instances/${id}` && url.searchParams.has('flash'), `after a refusal the page is ${page.url()}`);
  posted = 0;
  await page.reload();
  check(posted === 0, `reloading the refused page posted ${posted} time(s)`);
  check(await page.evaluate(() => performance.getEntriesByType('navigation')[0].type) === 'reload', 'the page was reloaded');
  check(await page.locator('#refusal').getAttribute('data-code') === 'guard_failed', 'the refusal shows again after a reload');
  page.off('request', countPosts);
  await openInstance(id);
  console.log('ok: wang submit without the seal refused: 请勾选:申请单位已加盖鲜章; a reload posts nothing');

  const submitted = await act(id, 'submit', {
    notification_letter: 'HW-2026-031',
    applicant_seal: true,
    operator_certificate: 'T-4411',
  });
  check(submitted === 303, `submit: HTTP ${submitted}`);
  check(await stateOf() === 'security_review', 'the permit goes to 秩序维护部初审');
  console.log('ok: wang submit -> security_review');

  // The submitter is told whose turn it is now.
  step = 'whose turn';
  const next = await page.locator('#next').innerText();
  check(next.includes('秩序维护部') && next.includes('初审通过'), `the page says 秩序维护部 acts next: ${next}`);
  check(await page.locator('#my-actions form.action').count() === 0, 'wang has nothing to do here');
  check(await page.locator('#other-actions').count() === 0, 'no forms or list of other roles for the contractor');
  console.log('ok: wang sees that 秩序维护部 acts next');

  // The contractor posts an approval anyway (a hand-made form): the engine refuses, and
  // nothing moves.
  step = 'wrong role';
  await page.evaluate((instance) => {
    const form = document.createElement('form');
    form.method = 'post';
    form.action = `/instances/${instance}/fire`;
    const token = document.querySelector('input[name=_csrf]').value;
    for (const [name, value] of [['_csrf', token], ['event', 'approve']]) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    const button = document.createElement('button');
    button.type = 'submit';
    button.id = 'forged-approve';
    form.appendChild(button);
    document.body.appendChild(form);
  }, id);
  const wrong = await submit(page.locator('#forged-approve'), `/instances/${id}/fire`);
  check(wrong === 303, `a wrong-role approve redirects, not ${wrong}`);
  const banner = page.locator('#refusal');
  check(await banner.getAttribute('data-code') === 'role_not_allowed', 'the refusal banner names role_not_allowed');
  const said = await banner.innerText();
  check(said.includes('须由秩序维护部办理') && !/role_not_allowed|order_dept|`/.test(said), `the banner says who may, by title: ${said}`);
  check(await stateOf() === 'security_review', 'a refused step changes nothing');
  await shot('refused');
  console.log('ok: wang approve refused: role_not_allowed');
  await signOut();

  // 秩序维护部's inbox and the permit on a phone.
  await phoneCheck('li', [['inbox', '/'], ['instance', `/instances/${id}`]], 'li');

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
  check(await submit(page.locator('#verify-button'), '/audit/verify') === 303, 'the store is verified');
  check(new URL(page.url()).pathname === '/audit', `the result is shown on ${page.url()}`);
  check(await page.locator('#verify-result').getAttribute('data-problems') === '0', 'the store is intact');
  await shot('audit', false);
  const csv = await page.request.get(`${base}/audit/export.csv?workflow=hot_work_permit`);
  check(csv.status() === 200, `the export answers ${csv.status()}`);
  const text = (await csv.body()).toString('utf8');
  check(text.startsWith('\ufeffinstance,workflow'), 'the CSV starts with a BOM and the header');
  check(text.includes(id) && text.includes('秩序维护部'), 'the CSV holds the permit in business words');
  console.log('ok: audit verify and CSV export');
  await signOut();

  // The finished permit's approval chain on a phone.
  await phoneCheck('audit', [['instance', `/instances/${id}`]], 'audit');

  // The front desk registers a goods request: its start needs data, so the full form opens
  // (a GET page); it is not posted while a required field is empty; the deadline of the new
  // request shows in the inbox by its title, with the working time left.
  await signIn('fang');
  step = 'a start that needs data';
  await page.selectOption('#start-workflow', 'goods_request');
  check(await submit(page.locator('#start-form button[type=submit]'), '/instances') === 303, 'the start form opens');
  check(new URL(page.url()).pathname === '/start', `the full start form is a GET page: ${page.url()}`);
  let startPosts = 0;
  const countStarts = (r) => { if (r.method() === 'POST') startPosts += 1; };
  page.on('request', countStarts);
  await page.locator('#start-form button[type=submit]').click();
  await page.waitForTimeout(300);
  check(startPosts === 0, 'an empty start form is not posted');
  page.off('request', countStarts);
  await page.fill('#start-goods_name', '有机酸奶');
  await page.fill('#start-customer_name', '孙女士');
  await page.fill('#start-customer_phone', '13800000000');
  check(await submit(page.locator('#start-form button[type=submit]'), '/instances') === 303, 'the goods request starts');
  const goods = new URL(page.url()).pathname.split('/').pop();
  check(goods.startsWith('goods_request-'), `the start opens the request (at ${page.url()})`);
  const deadline = await page.locator('#next .deadlines').innerText();
  check(deadline.includes('及时登记') && deadline.includes('还剩'), `the page names the deadline and the time left: ${deadline}`);
  step = 'deadlines in the inbox';
  await page.goto(`${base}/`);
  const due = await page.locator(`#tasks tr[data-instance="${goods}"] td.due`).innerText();
  check(due.includes('及时登记') && due.includes('还剩') && due.includes('工作'), `the inbox shows the deadline by its title and the working time left: ${due}`);
  await shot('inbox-fang', false);
  console.log(`ok: fang started ${goods}; the inbox shows ${due.replace(/\s+/g, ' ')}`);
  await signOut();
  await phoneCheck('fang', [['inbox', '/'], ['instance', `/instances/${goods}`]], 'fang');

  const [renovation, permit] = await renovationToHotWork();

  // A clerk's pages in Chinese: titles and Chinese words only, whether the instance is new
  // (deadlines pending) or finished (a long history and approval chain).
  check(rawIds.length > 10, `the raw ids to look for: ${rawIds}`);
  for (const [user, paths] of [
    ['fang', ['/', `/instances/${goods}`, '/start?workflow=goods_request', '/instances']],
    ['zhou', ['/', `/instances/${id}`, `/instances/${renovation}`]],
    ['wang', [`/instances/${id}`, `/instances/${renovation}`, `/instances/${permit}`]],
  ]) {
    step = `${user}'s pages in Chinese`;
    const { ctx, p } = await signedIn(user, 'zh-CN');
    try {
      for (const path of paths) {
        step = `${user}'s ${path} in Chinese`;
        await p.goto(`${base}${path}`);
        check(await p.locator('html').getAttribute('lang') === 'zh-CN', `${path} is marked Chinese`);
        const text = await p.locator('body').innerText();
        const words = engineWords(text);
        check(words.length === 0, `${user} reads ${words.join(', ')} on ${path}:\n${text}`);
      }
    } finally {
      await ctx.close();
    }
  }
  console.log('ok: a clerk\'s pages in Chinese hold no engine words and no raw ids');

  // The same pages for a browser that asks for English.
  step = 'English';
  {
    const { ctx, p } = await signedIn('fang', 'en-US');
    try {
      await p.goto(`${base}/`);
      check(await p.locator('html').getAttribute('lang') === 'en', 'the inbox is marked English');
      const heading = await p.locator('main h1').first().innerText();
      check(heading.includes('My tasks'), `the inbox heading is English: ${heading}`);
      const start = await p.locator('#start-form button[type=submit]').innerText();
      check(start.trim() === 'Start', `the start button is English: ${start}`);
      await p.goto(`${base}/instances/${goods}`);
      const page = await p.locator('body').innerText();
      for (const words of ['My actions', 'History', 'Comment', 'left']) {
        check(page.includes(words), `the instance page in English says "${words}":\n${page}`);
      }
      check(!page.includes('我可以办理') && !page.includes('历史'), 'no Chinese labels on the English page');
      await p.screenshot({ path: join(shots, 'instance-en.png'), fullPage: true });

      // The switch: one click, a cookie, and the pages after it follow it over the browser's
      // own language.
      step = 'the language switch';
      await Promise.all([p.waitForURL(`**/instances/${goods}`), p.locator('#lang-switch a[data-lang="zh"]').click()]);
      check(await p.locator('html').getAttribute('lang') === 'zh-CN', 'the switch goes back to the page, in Chinese');
      const cookie = (await ctx.cookies()).find((c) => c.name === 'sopflow_lang');
      check(cookie && cookie.value === 'zh' && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/', `the language cookie: ${JSON.stringify(cookie)}`);
      await p.goto(`${base}/`);
      const inbox = await p.locator('main h1').first().innerText();
      check(inbox.includes('待办'), `the next page follows the switch: ${inbox}`);
      await Promise.all([p.waitForURL(`${base}/`), p.locator('#lang-switch a[data-lang="en"]').click()]);
      check((await p.locator('main h1').first().innerText()).includes('My tasks'), 'and back to English');
    } finally {
      await ctx.close();
    }
  }
  console.log('ok: English follows the browser, and the switch sets a cookie the next pages follow');

  await browser.close();
  console.log('console: all checks passed');
} catch (err) {
  console.error(`FAILED at step "${step}": ${err.message}`);
  console.error(`page: ${page.url()}`);
  try { await shot('failure'); } catch {}
  await browser.close();
  process.exit(1);
}
