// The till page (GET /pos) in a real Chromium against a real `buoni serve`,
// with a camera that sees a real rendered card (issue 13).
//
//   BUONI_BIN=build/tools/buoni node --test tests/browser/pos.test.mjs
//   BUONI_SCREENSHOTS=docs/screenshots ...   # keep the 360x740 screenshots
//
// Needs Debian's chromium (/usr/bin/chromium) and ffmpeg, and playwright-core
// from package-lock.json (scripts/install-deps.sh). The tests run in order
// and share one browser, one server and one data directory; every wait is
// bounded, and the server, the browser and the temp dirs go at the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  buoni, buoniJson, cardVideo, masked, pageServer, shopApi, startServer, utcDay,
} from './support.mjs';

const CHROMIUM = process.env.BUONI_CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 10000; // any one wait in the page

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'buoni-pos-'));
const data = path.join(tmp, 'data');
const shotsDir = path.resolve(process.env.BUONI_SCREENSHOTS || path.join(tmp, 'screenshots'));

let server; // the running buoni serve: {url, proc, stop}
const site = () => server.url; // what the browser opens
let api; // the shop's API by its key (checks the store, not the page)
let browser, context, page;
let shopKey;
const cards = {}; // name -> card issue's JSON (number, token, pin)
const requests = []; // every request the page made: {method, path, headers}
const consoleErrors = []; // console errors other than failed loads
const failedLoads = []; // "Failed to load resource" lines (an API's 4xx is one)
const cspViolations = [];
const timings = {};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const euroIt = (cents) => `${Math.floor(cents / 100)},${String(cents % 100).padStart(2, '0')} €`;

function pathOf(url) {
  const u = new URL(url);
  return u.pathname + u.search;
}

function madeRequests(method, prefix) {
  return requests.filter((r) => r.method === method && r.path.startsWith(prefix));
}

// Screenshots of the current screen in Italian and in English (the toggle).
async function shot(name) {
  fs.mkdirSync(shotsDir, { recursive: true });
  assert.equal(await page.getAttribute('html', 'lang'), 'it');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(shotsDir, `${name}-it.png`) });
  // A script click: the retry dialog covers the header's toggle.
  await page.$eval('#lang', (b) => b.click());
  await page.waitForSelector('html[lang="en"]', { timeout: STEP_MS });
  await page.screenshot({ path: path.join(shotsDir, `${name}-en.png`) });
  await page.$eval('#lang', (b) => b.click());
  await page.waitForSelector('html[lang="it"]', { timeout: STEP_MS });
}

async function visible(selector) {
  await page.waitForSelector(selector, { state: 'visible', timeout: STEP_MS });
}

async function typeAmount(digits) {
  await page.click('#key-clear');
  for (const d of digits) await page.click(`#keypad [data-key="${d}"]`);
}

// From the card step: types the number, reads the card.
async function readCardByNumber(number) {
  await visible('#pay-card-step');
  await page.fill('#card-number', '');
  await page.type('#card-number', number);
  await page.click('#card-go');
  await visible('#pay-amount-step');
}

async function newPayment() {
  if (await page.isVisible('#pay-result')) await page.click('#result-again');
  if (await page.isVisible('#pay-amount-step')) await page.click('#card-change');
  await visible('#pay-card-step');
}

async function openTab(name) {
  await page.click(`.tab[data-tab="${name}"]`);
  await visible(`#screen-${name}`);
}

async function redemptionsOf(card) {
  return (await api.transactions()).filter((t) => t.kind === 'redemption' && t.card_number === masked(card.number));
}

async function balanceOf(card) {
  return (await api.card(card.number)).balance_cents;
}

describe('the till page in Chromium', { timeout: 240000 }, () => {
  before(async () => {
    await buoni(data, 'init');
    const from = utcDay(-1), until = utcDay(200);
    await buoniJson(data, 'programme', 'create', '--id', 'pos-test', '--name', 'Buoni spesa prova',
      '--budget-cents', '100000000', '--valid-from', from, '--valid-until', until);
    await buoniJson(data, 'programme', 'create', '--id', 'pos-pin', '--name', 'Buoni spesa con PIN',
      '--budget-cents', '100000000', '--valid-from', from, '--valid-until', until, '--require-pin');
    const shop = await buoniJson(data, 'merchant', 'add', '--id', 'forno-1', '--name', 'Forno Rialto',
      '--vat-number', '01234567897', '--programme', 'pos-test', '--programme', 'pos-pin');
    shopKey = shop.api_key;
    assert.match(shopKey, /^mk_/);
    const issue = async (name, programme, cents) => {
      cards[name] = await buoniJson(data, 'card', 'issue', '--programme', programme,
        '--beneficiary-ref', `FAM-${name}`, '--amount-cents', String(cents));
    };
    await issue('scan', 'pos-test', 15000);
    await issue('typed', 'pos-test', 5000);
    await issue('pin', 'pos-pin', 8000);
    await issue('double', 'pos-test', 4000);
    await issue('retry', 'pos-test', 3000);
    await issue('hold', 'pos-test', 10000);
    assert.match(cards.pin.pin, /^\d{5}$/);

    server = await startServer(data);
    api = shopApi(server.url, shopKey);

    // The camera's picture: the scan card as rendered for printing (render
    // works while the server holds the data directory).
    const png = path.join(tmp, 'card.png'), y4m = path.join(tmp, 'card.y4m');
    await buoni(data, 'card', 'render', '--card', cards.scan.number, '--format', 'png', '--out', png);
    await cardVideo(png, y4m);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        `--use-file-for-fake-video-capture=${y4m}`],
    });
    context = await browser.newContext({
      viewport: { width: 360, height: 740 }, deviceScaleFactor: 1, locale: 'it-IT',
      permissions: ['camera'], isMobile: false, hasTouch: true,
    });
    await context.exposeFunction('__cspViolation', (text) => cspViolations.push(text));
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
      });
    });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('request', (r) => requests.push({ method: r.method(), path: pathOf(r.url()), headers: r.headers() }));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      (m.text().startsWith('Failed to load resource') ? failedLoads : consoleErrors).push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await server?.stop().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
    if (process.env.BUONI_SCREENSHOTS) console.log(`screenshots in ${shotsDir}`);
    console.log('timings (ms):', JSON.stringify(timings));
  });

  test('the page and its assets are served with strict security headers', async () => {
    const sizes = {};
    for (const [p, type] of [['/pos', 'text/html'], ['/pos/pos.js', 'javascript'], ['/pos/pos.css', 'text/css'],
      ['/pos/jsqr.js', 'javascript']]) {
      const res = await fetch(site() + p, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') || '', new RegExp(type), p);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', p);
      sizes[p] = (await res.arrayBuffer()).byteLength;
      if (p !== '/pos') continue;
      const csp = res.headers.get('content-security-policy') || '';
      for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'",
        "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "connect-src 'self'"]) {
        assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
      }
      assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), csp);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    }
    // The page itself: nothing inline for the CSP to refuse.
    const html = fs.readFileSync(new URL('../../api/pos/index.html', import.meta.url), 'utf8');
    assert.ok(!/<script(?![^>]*\ssrc=)[^>]*>/i.test(html), 'no inline <script>');
    assert.ok(!/\sstyle=|<style|\son[a-z]+=/i.test(html), 'no inline style or handler attributes');
    console.log('sizes (bytes):', JSON.stringify(sizes));
  });

  test('the card-number check symbol is the CLI\'s (mod 37)', async () => {
    await page.goto(`${site()}/pos`);
    await visible('#screen-signin');
    const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U';
    for (const card of Object.values(cards)) {
      const n = card.number;
      const verdicts = await page.evaluate(({ n, alphabet }) => {
        const check = (s) => window.buoniPos.checkCardNumber(s).state;
        const wrong = [...alphabet].filter((c) => c !== n.at(-1)).map((c) => check(n.slice(0, -1) + c));
        const sloppy = n.toLowerCase().replace(/-/g, ' ').replace(/0/g, 'o').replace(/1/g, 'l');
        return { right: check(n), sloppy: check(sloppy), wrong: [...new Set(wrong)], id: check(n.slice(0, -2)) };
      }, { n, alphabet });
      assert.deepEqual(verdicts, { right: 'ok', sloppy: 'ok', wrong: ['bad_check'], id: 'short' }, n);
    }
  });

  test('sign in with the shop key (a wrong key first); the key is kept nowhere', async () => {
    assert.equal(await page.getAttribute('html', 'lang'), 'it', 'Italian from navigator.language it-IT');
    await shot('01-signin');
    // The camera sees a card, not a shop key: refused, and nothing is sent.
    const sessionsBefore = madeRequests('POST', '/v1/sessions').length;
    const t0 = Date.now();
    await page.click('#signin-scan');
    await page.waitForSelector('#scanner-msg.bad', { timeout: STEP_MS });
    timings.first_scan_decoded = Date.now() - t0; // camera start, jsQR loaded, a frame decoded
    assert.match(await page.textContent('#scanner-msg'), /non è una chiave del negozio/);
    await page.click('#scanner-close');
    await page.waitForSelector('#scanner', { state: 'hidden', timeout: STEP_MS });
    assert.equal(madeRequests('POST', '/v1/sessions').length, sessionsBefore);

    await page.fill('#signin-key', 'mk_' + '0'.repeat(64));
    await page.click('#signin-go');
    await page.waitForSelector('#signin-msg.bad', { timeout: STEP_MS });
    assert.match(await page.textContent('#signin-msg'), /Chiave sbagliata/);

    await page.fill('#signin-key', shopKey);
    const [signedIn] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/sessions') && r.request().method() === 'POST'),
      page.click('#signin-go'),
    ]);
    assert.equal(signedIn.status(), 201);
    const session = await signedIn.json();
    assert.ok(session.csrf_token, 'a CSRF token');
    assert.equal(session.merchant_id, 'forno-1');
    await visible('#screen-pay');
    assert.equal(await page.textContent('#shop-name'), 'Forno Rialto');
    assert.equal(await page.inputValue('#signin-key'), '', 'the key is cleared from the input');
    const kept = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage },
      location.href, document.cookie, history.length]));
    assert.ok(!kept.includes(shopKey), 'the key is not in storage, the URL or a script-readable cookie');
    const cookie = (await context.cookies(site())).find((c) => c.name === 'buoni_session');
    assert.ok(cookie, 'a buoni_session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.ok(cookie.expires > Date.now() / 1000, 'the cookie has an expiry');
    assert.ok(!cookie.value.includes(shopKey.slice(3)), 'the cookie is not the key');
  });

  test('scan the printed card with the camera, charge 12,50 € (keypad), see the new balance', async () => {
    const t0 = Date.now();
    await page.click('#card-scan');
    await visible('#pay-amount-step');
    timings.scan_to_card = Date.now() - t0;
    assert.equal(await page.textContent('#card-shown'), cards.scan.number);
    assert.equal(await page.textContent('#card-balance'), '150,00 €');
    const lookup = madeRequests('GET', '/v1/cards/').at(-1);
    assert.ok(lookup.path.startsWith('/v1/cards/BS1%3A'), 'the card was read by its token from the QR');
    const t1 = Date.now();
    await typeAmount('1250');
    assert.equal(await page.textContent('#amount'), '12,50 €');
    assert.equal(await page.textContent('#pay-go'), 'Incassa 12,50 €');
    const typing = Date.now() - t1;
    await page.click('#pay-go');
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    timings.scan_to_success = Date.now() - t0;
    timings.scan_to_success_without_typing = timings.scan_to_success - typing;
    console.log(`scan start -> card read ${timings.scan_to_card} ms; -> success ${timings.scan_to_success} ms ` +
      `(${timings.scan_to_success_without_typing} ms without the 4 keypad taps)`);
    assert.equal(await page.textContent('#result-amount'), '12,50 €');
    assert.match(await page.textContent('#result-text'), /137,50 €/);
    assert.match(await page.textContent('#result-receipt'), /rd_\S+/);
    const post = madeRequests('POST', '/v1/redemptions').at(-1);
    assert.match(post.headers['idempotency-key'], /^pos-[A-Za-z0-9_-]{22}$/);
    assert.ok(post.headers['x-csrf-token'], 'the CSRF header');
    assert.equal(await balanceOf(cards.scan), 13750, 'the store has the new balance');
    await shot('04-success');

    // The screens before the answer, for the screenshots: card read, amount typed.
    await page.click('#result-again');
    await readCardByNumber(cards.scan.number);
    await shot('02-card');
    await typeAmount('1250');
    await shot('03-keypad');
  });

  test('type the number: grouped as printed; a wrong check symbol is refused before sending', async () => {
    await newPayment();
    const n = cards.typed.number;
    const wrongCheck = n.slice(0, -1) + (n.at(-1) === '7' ? '8' : '7');
    const before = madeRequests('GET', '/v1/cards/').length;
    await page.type('#card-number', wrongCheck.replace(/-/g, '').toLowerCase());
    assert.equal(await page.inputValue('#card-number'), wrongCheck, 'regrouped as printed');
    assert.match(await page.textContent('#card-check'), /controllo non torna/);
    assert.equal(await page.isDisabled('#card-go'), true);
    await page.press('#card-number', 'Enter');
    await sleep(300);
    assert.equal(madeRequests('GET', '/v1/cards/').length, before, 'nothing was sent');
    assert.equal(await page.isVisible('#pay-card-step'), true);

    await page.fill('#card-number', '');
    await page.type('#card-number', n.replace(/0/g, 'O').replace(/1/g, 'I').replace(/-/g, ' '));
    assert.equal(await page.inputValue('#card-number'), n);
    assert.match(await page.textContent('#card-check'), /valido/);
    await page.click('#card-go');
    await visible('#pay-amount-step');
    assert.equal(await page.textContent('#card-balance'), '50,00 €');
  });

  test('insufficient funds are declined in words, with what is left', async () => {
    await typeAmount('6000');
    await page.click('#pay-go');
    await page.waitForSelector('#pay-result.bad', { timeout: STEP_MS });
    assert.match(await page.textContent('#result-text'), /Saldo insufficiente: sulla carta restano 50,00 €/);
    await shot('05-decline');
    await page.click('#result-back');
    await typeAmount('2000');
    await page.click('#pay-go');
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    assert.match(await page.textContent('#result-text'), /30,00 €/);
    assert.equal(await balanceOf(cards.typed), 3000);
  });

  test('PIN: a wrong PIN is shown, the right one pays, 4 wrong ones lock the card (said in words)', async () => {
    const card = cards.pin;
    const wrongPin = String((Number(card.pin[0]) + 1) % 10) + card.pin.slice(1);
    await newPayment();
    await readCardByNumber(card.number);
    await visible('#pin-box');
    await typeAmount('500');
    assert.equal(await page.isDisabled('#pay-go'), true, 'no PIN yet');
    await page.fill('#pin', wrongPin);
    await page.click('#pay-go');
    await page.waitForSelector('#pay-result.bad', { timeout: STEP_MS });
    assert.match(await page.textContent('#result-text'), /PIN sbagliato/);
    await page.click('#result-back');
    assert.equal(await page.inputValue('#pin'), '', 'the PIN is cleared');
    await page.fill('#pin', card.pin);
    await page.click('#pay-go');
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    assert.equal(await balanceOf(card), 7500);

    await newPayment();
    await readCardByNumber(card.number);
    await typeAmount('100');
    for (let attempt = 1; attempt <= 4; attempt++) {
      await page.fill('#pin', wrongPin);
      await page.click('#pay-go');
      await page.waitForSelector('#pay-result.bad', { timeout: STEP_MS });
      const text = await page.textContent('#result-text');
      if (attempt < 4) {
        assert.match(text, /PIN sbagliato/, `attempt ${attempt}`);
        await page.click('#result-back');
      } else {
        assert.match(text, /Troppi PIN sbagliati.*centro di contatto/, 'pin_locked in words');
        assert.equal(await page.isVisible('#result-back'), false, 'no retry on a locked card');
      }
    }
    await shot('06-pin-locked');
    const locked = await api.call('POST', '/v1/redemptions', { card: card.number, amount_cents: 100, pin: card.pin },
      { 'Idempotency-Key': 'test-locked-1' });
    assert.equal(locked.body.error.code, 'pin_locked', 'even the right PIN is refused now');
    assert.equal(await balanceOf(card), 7500);
  });

  test('a double tap on Confirm makes exactly one redemption', async () => {
    await newPayment();
    await readCardByNumber(cards.double.number);
    await typeAmount('300');
    const before = madeRequests('POST', '/v1/redemptions').length;
    await page.dblclick('#pay-go');
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    await page.click('#result-again');
    await readCardByNumber(cards.double.number);
    await typeAmount('200');
    // Two taps within one task, before any answer could come.
    await page.evaluate(() => {
      const b = document.getElementById('pay-go');
      b.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      b.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    });
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    assert.equal(madeRequests('POST', '/v1/redemptions').length - before, 2, 'one request per payment');
    const made = await redemptionsOf(cards.double);
    assert.deepEqual(made.map((t) => t.amount_cents), [300, 200]);
    assert.equal(await balanceOf(cards.double), 3500);
  });

  test('the server stops mid-request: the banner shows, Retry resends the same key, one redemption', async () => {
    await newPayment();
    await readCardByNumber(cards.retry.number);
    await typeAmount('1000');
    const port = new URL(server.url).port;
    let reached = null;
    // The first redemption reaches the server and is committed; then the
    // server stops and the page gets no answer.
    await page.route('**/v1/redemptions', async (route) => {
      reached = await route.fetch();
      await server.stop();
      await route.abort('connectionreset');
    }, { times: 1 });
    const before = madeRequests('POST', '/v1/redemptions').length;
    await page.click('#pay-go');
    await visible('#pending');
    assert.equal(reached.status(), 201, 'the first attempt was committed');
    await visible('#offline');
    assert.match(await page.textContent('#offline'), /Server non raggiungibile/);
    await shot('07-unreachable');

    server = await startServer(data, `127.0.0.1:${port}`);
    await page.waitForSelector('#offline', { state: 'hidden', timeout: 15000 });
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/redemptions')),
      page.click('#pending-retry'),
    ]);
    assert.equal(answer.status(), 201);
    assert.equal(answer.headers()['idempotent-replayed'], 'true', 'the server replayed the first answer');
    await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
    assert.match(await page.textContent('#result-text'), /20,00 €/);
    const sent = madeRequests('POST', '/v1/redemptions').slice(before);
    assert.equal(sent.length, 2, 'the first try and the retry');
    assert.equal(sent[0].headers['idempotency-key'], sent[1].headers['idempotency-key'], 'the same key');
    assert.equal((await redemptionsOf(cards.retry)).length, 1, 'exactly one redemption');
    assert.equal(await balanceOf(cards.retry), 2000);
  });

  test('home delivery: hold -> capture (at most the held amount) and hold -> void; expiring holds stand out', async () => {
    const card = cards.hold;
    const placeHold = async (digits, seconds) => {
      await newPayment();
      await readCardByNumber(card.number);
      await typeAmount(digits);
      await page.click('#hold-open');
      await page.selectOption('#hold-expires', seconds);
      await page.click('#hold-go');
      await page.waitForSelector('#pay-result.good', { timeout: STEP_MS });
      assert.match(await page.textContent('#result-title'), /Importo prenotato/);
    };
    await placeHold('3000', '86400');
    await placeHold('1000', '259200');
    assert.equal((await api.card(card.number)).held_cents, 4000);

    await openTab('holds');
    await page.waitForSelector('#holds-list li', { timeout: STEP_MS });
    assert.equal(await page.locator('#holds-list li').count(), 2);
    const soon = page.locator('#holds-list li.soon');
    assert.equal(await soon.count(), 1, 'the one-day hold is highlighted');
    assert.match(await soon.textContent(), /30,00 €/);
    await shot('08-holds');

    const before = madeRequests('POST', '/v1/authorizations/').length;
    await soon.locator('.amount-input').fill('40,00');
    await soon.locator('.capture').click();
    assert.match(await soon.locator('.msg').textContent(), /Al massimo/);
    assert.equal(madeRequests('POST', '/v1/authorizations/').length, before, 'refused before sending');
    await soon.locator('.amount-input').fill('25,00');
    await soon.locator('.capture').click();
    await soon.locator('.msg.good').waitFor({ timeout: STEP_MS });
    assert.match(await soon.locator('.msg').textContent(), /Incassati 25,00 €/);

    const other = page.locator('#holds-list li:not(.soon)');
    await other.locator('.void').click();
    await other.locator('.void-yes').click();
    await other.locator('.msg.good').waitFor({ timeout: STEP_MS });
    assert.match(await other.locator('.msg').textContent(), /annullata/);

    const c = await api.card(card.number);
    assert.deepEqual([c.balance_cents, c.held_cents], [7500, 0]);
    const kinds = (await api.transactions()).filter((t) => t.card_number === masked(card.number)).map((t) => t.kind);
    assert.ok(kinds.includes('capture') && kinds.includes('void'), kinds.join());
    for (const r of madeRequests('POST', '/v1/authorizations')) assert.ok(r.headers['idempotency-key'] && r.headers['x-csrf-token']);
    await page.click('#holds-reload');
    await page.waitForSelector('#holds-msg:has-text("Nessuna prenotazione")', { timeout: STEP_MS });
  });

  test('today\'s till: the day\'s redemptions with totals, a refund of a listed redemption, the printed summary', async () => {
    await openTab('today');
    await page.waitForSelector('#today-list li', { timeout: STEP_MS });
    const all = await api.transactions();
    const till = all.filter((t) => ['redemption', 'capture', 'refund'].includes(t.kind));
    const net = till.reduce((s, t) => s + (t.kind === 'refund' ? -t.amount_cents : t.amount_cents), 0);
    assert.equal(await page.locator('#today-list li').count(), till.length);
    assert.equal(await page.textContent('#total-net'), euroIt(net));

    const scanned = (await redemptionsOf(cards.scan))[0];
    const row = page.locator(`#today-list li[data-id="${scanned.id}"]`);
    await row.locator('.refund').click();
    assert.equal(await row.locator('.amount-input').inputValue(), '12,50');
    await row.locator('.amount-input').fill('2,50');
    await row.locator('.refund-go').click();
    await page.waitForSelector(`#today-list li[data-id="${scanned.id}"] .msg.good`, { timeout: STEP_MS });
    assert.match(await page.textContent(`#today-list li[data-id="${scanned.id}"] .msg`), /Rimborsati 2,50 €/);
    assert.equal(await page.textContent('#total-refunded'), '2,50 €');
    assert.equal(await page.textContent('#total-net'), euroIt(net - 250));
    assert.equal(await balanceOf(cards.scan), 14000);
    await shot('09-today');

    await page.evaluate(() => { window.print = () => {}; }); // no print dialog in a test
    await page.click('#today-print');
    await page.emulateMedia({ media: 'print' });
    assert.match(await page.textContent('#today-title'), /Riepilogo di fine giornata · Forno Rialto/);
    assert.equal(await page.isVisible('#tabs'), false, 'the print sheet is the summary only');
    await page.screenshot({ path: path.join(shotsDir, '10-print-it.png'), fullPage: true });
    await page.emulateMedia({ media: 'screen' });
  });

  test('sign out: the session ends in the server, and a money call with it is refused', async () => {
    const cookie = (await context.cookies(site())).find((c) => c.name === 'buoni_session');
    const csrf = (await (await fetch(`${site()}/v1/sessions/current`, {
      headers: { Cookie: `buoni_session=${cookie.value}` }, signal: AbortSignal.timeout(5000),
    })).json()).csrf_token;
    const [ended] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/sessions/current/end')),
      page.click('#signout'),
    ]);
    assert.equal(ended.status(), 200);
    await visible('#screen-signin');
    const count = (await api.transactions()).length;
    const replay = await fetch(`${site()}/v1/redemptions`, {
      method: 'POST',
      headers: { Cookie: `buoni_session=${cookie.value}`, 'X-CSRF-Token': csrf, 'Idempotency-Key': 'test-after-signout',
        'Content-Type': 'application/json' },
      body: JSON.stringify({ card: cards.scan.number, amount_cents: 100 }),
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(replay.status, 401, 'the old cookie and token are refused');
    const fromPage = await page.evaluate(async (card) => (await fetch('/v1/redemptions', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'test-after-signout-2' },
      body: JSON.stringify({ card, amount_cents: 100 }),
    })).status, cards.scan.number);
    assert.equal(fromPage, 401);
    assert.equal((await api.transactions()).length, count, 'nothing was charged');
  });

  test('a made-up session cookie is refused', async () => {
    await context.addCookies([{ name: 'buoni_session', value: 'forged-' + 'x'.repeat(40), url: site() }]);
    assert.equal(await page.evaluate(async () => (await fetch('/v1/sessions/current')).status), 401);
    await page.reload();
    await visible('#screen-signin');
    await context.clearCookies();
  });

  test('a cross-site form post, or the cookie without its CSRF token, is refused', async () => {
    await page.fill('#signin-key', shopKey);
    await page.click('#signin-go');
    await visible('#screen-pay');
    const count = (await api.transactions()).length;
    const body = JSON.stringify({ card: cards.scan.number, amount_cents: 100, pad: '' }).slice(0, -2);
    const evil = await pageServer(`<!doctype html><title>offerte</title>
<form id="f" method="post" enctype="text/plain" action="${site()}/v1/redemptions">
<input type="hidden" name='${body}' value='"}'></form>
<script>document.getElementById('f').submit()</script>`);
    try {
      const statuses = [];
      // 127.0.0.1 on another port is the same site (SameSite lets the cookie
      // go: the CSRF token is what stops it); localhost is another site.
      for (const host of ['127.0.0.1', 'localhost']) {
        const [res] = await Promise.all([
          page.waitForResponse((r) => r.url() === `${site()}/v1/redemptions` && r.request().method() === 'POST',
            { timeout: STEP_MS }),
          page.goto(`http://${host}:${evil.port}/`),
        ]);
        statuses.push(`${host}: ${res.status()} ${(await res.text()).slice(0, 120)}`);
        assert.ok(res.status() >= 400 && res.status() < 500, statuses.at(-1));
      }
      console.log('cross-site posts answered:', statuses.join(' | '));
    } finally {
      await evil.close();
    }
    // Without an Origin header (not a browser), the cookie alone is not
    // enough: the CSRF token must come too, and be the session's.
    const cookie = (await context.cookies(site())).find((c) => c.name === 'buoni_session');
    for (const token of [null, 'f'.repeat(64)]) {
      const res = await fetch(`${site()}/v1/redemptions`, {
        method: 'POST',
        headers: { Cookie: `buoni_session=${cookie.value}`, 'Idempotency-Key': `test-csrf-${token ? 'wrong' : 'none'}`,
          'Content-Type': 'application/json', ...(token ? { 'X-CSRF-Token': token } : {}) },
        body: JSON.stringify({ card: cards.scan.number, amount_cents: 100 }),
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(res.status, 403, `CSRF token ${token ? 'wrong' : 'missing'}`);
      assert.equal((await res.json()).error.code, 'csrf_failed');
    }
    assert.equal((await api.transactions()).length, count, 'nothing was charged');
    await page.goto(`${site()}/pos`);
    await visible('#screen-pay'); // the session survived, restored on reload
  });

  test('the page defaults to English for an English browser', async () => {
    const en = await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'en-GB' });
    try {
      const p = await en.newPage();
      await p.goto(`${site()}/pos`);
      await p.waitForSelector('#screen-signin:not([hidden])', { timeout: STEP_MS });
      assert.equal(await p.getAttribute('html', 'lang'), 'en');
      assert.equal(await p.textContent('#signin-go'), 'Sign in');
    } finally {
      await en.close();
    }
  });

  test('no console errors and no CSP violations during the whole run', () => {
    if (failedLoads.length) console.log(`API refusals logged by the browser (expected): ${failedLoads.length}`);
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(consoleErrors, []);
  });
});
