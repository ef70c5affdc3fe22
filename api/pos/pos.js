// The shop's till (GET /pos): sign in with the shop key, take payments from a
// card's QR or number, delivery holds, today's till. One file, no framework,
// no build step. Served by `buoni serve` under a CSP of script-src 'self':
// no inline script, no eval, no inline style.
//
// Rules this file keeps:
//  - Money is integer cents (Number, always a safe integer), never a float:
//    the keypad builds cents digit by digit, formatting divides with %.
//  - The shop key is never stored: it goes once to POST /v1/sessions and
//    the input is cleared. The session is an HttpOnly cookie; the CSRF token
//    lives in a variable only (fetched again from /v1/sessions/current).
//  - Every money call has an Idempotency-Key made here before sending. Only
//    a definitive answer (2xx, or 4xx other than 408/429) ends an attempt;
//    otherwise the cashier can retry, which resends the same key and bytes.
'use strict';

(() => {
  // ---------------------------------------------------------------- words
  const TEXT = {
    it: {
      title: 'Buoni · Cassa',
      offline_title: 'Server non raggiungibile',
      offline_text: 'Nessun pagamento può essere fatto finché non torna la connessione.',
      sign_out: 'Esci',
      signin_title: 'Accesso del negozio',
      signin_hint: 'Inquadra il QR della chiave del negozio, oppure scrivi la chiave (mk_…).',
      signin_scan: 'Inquadra il QR della chiave',
      signin_key: 'Chiave del negozio',
      signin_go: 'Accedi',
      signin_note: 'La chiave non resta su questo telefono: serve solo ad aprire la sessione della cassa, che dura una giornata.',
      signin_busy: 'Accesso in corso…',
      signin_wrong: 'Chiave sbagliata: controlla e riprova.',
      signin_malformed: 'Una chiave del negozio comincia con mk_.',
      signin_too_many: 'Troppi tentativi: aspetta un minuto e riprova.',
      signin_failed: 'Accesso non riuscito ({detail}).',
      signin_ended: 'La sessione è finita: accedi di nuovo.',
      signed_out: 'Sei uscito. A presto!',
      until: 'fino alle {time}',
      tab_pay: 'Incasso',
      tab_holds: 'Consegne',
      tab_today: 'Oggi',
      card_scan: 'Inquadra il QR della carta',
      card_number: 'Numero della carta',
      card_go: 'Leggi la carta',
      card_change: 'Cambia',
      card_loading: 'Lettura della carta…',
      check_empty: '16 simboli e 1 di controllo, come stampati sulla carta.',
      check_count: '{n} di 17 simboli',
      check_long: 'Troppi simboli: un numero ne ha 17.',
      check_char: 'Il simbolo «{c}» non può stare in un numero di carta.',
      check_bad: 'Il simbolo di controllo non torna: probabilmente un errore di battitura.',
      check_ok: 'Numero valido ✓',
      not_a_card: 'Questo QR non è di una carta buoni.',
      not_a_key: 'Questo QR non è una chiave del negozio (mk_…).',
      balance: 'Saldo',
      held: '{amount} prenotati per consegne',
      status_active: 'Carta attiva',
      status_blocked: 'Carta bloccata: non si può usare.',
      status_revoked: 'Carta sostituita o revocata: non si può usare.',
      status_expired: 'Carta scaduta: non si può usare.',
      valid_until: 'valida fino al {date}',
      pin_needed: 'Serve il PIN della carta.',
      over_balance: 'L’importo supera il saldo della carta.',
      clear: 'Cancella',
      backspace: 'Indietro',
      pin_label: 'PIN della carta (5 cifre)',
      reference_open: 'Riferimento (facoltativo)',
      reference_hint: 'n. scontrino o ordine',
      pay_go: 'Incassa {amount}',
      pay_go_empty: 'Scrivi l’importo',
      hold_open: 'Prenota per consegna a domicilio',
      hold_expires: 'La prenotazione scade dopo',
      days_1: '1 giorno',
      days_3: '3 giorni',
      days_7: '7 giorni',
      hold_go: 'Prenota {amount}',
      sending: 'Invio…',
      paid: 'Pagamento riuscito',
      new_balance: 'Nuovo saldo: {amount}',
      receipt: 'Ricevuta {id}\nregistro n. {seq} · {time} · carta {card}',
      declined: 'Pagamento rifiutato',
      held_ok: 'Importo prenotato',
      held_text: 'Prenotazione {id}, scade il {when}. Alla consegna: scheda Consegne, «Incassa».',
      hold_declined: 'Prenotazione rifiutata',
      new_payment: 'Nuovo incasso',
      back_to_amount: 'Correggi e riprova',
      what_pay: 'Incasso di {amount} sulla carta {card}',
      what_hold: 'Prenotazione di {amount} sulla carta {card}',
      what_capture: 'Incasso della consegna: {amount}',
      what_void: 'Annullamento della prenotazione {id}',
      what_refund: 'Rimborso di {amount}',
      pending_title: 'Server non raggiungibile',
      pending_text: 'Non sappiamo se l’operazione è stata registrata. Riprova: se era già registrata, non verrà ripetuta.',
      pending_busy: 'Il server è occupato: riprova fra qualche secondo.',
      pending_server: 'Il server ha avuto un problema ({status}).',
      retry: 'Riprova',
      retrying: 'Nuovo tentativo…',
      give_up: 'Lascia stare (controlla poi la cassa di oggi)',
      gave_up: 'Operazione non confermata: controlla nella cassa di oggi se è stata registrata prima di rifarla.',
      holds_title: 'Prenotazioni aperte',
      holds_hint: 'Per una nuova prenotazione: Incasso, leggi la carta, importo, «Prenota».',
      holds_none: 'Nessuna prenotazione aperta.',
      holds_loading: 'Caricamento…',
      hold_created: 'prenotata {when}',
      hold_expiry: 'scade {when}',
      hold_soon: 'scade entro 24 ore',
      capture_label: 'Consegnato (massimo {amount})',
      capture_go: 'Incassa',
      void_go: 'Annulla',
      void_sure: 'Sì, annulla la prenotazione',
      void_no: 'No',
      captured: 'Incassati {amount}. Nuovo saldo: {balance}. Ricevuta {id}.',
      voided: 'Prenotazione annullata: {amount} tornano sulla carta.',
      amount_bad: 'Scrivi un importo come 12,50.',
      amount_over_hold: 'Al massimo l’importo prenotato ({amount}).',
      reload: 'Aggiorna',
      today_title: 'Cassa di oggi',
      today_print_title: 'Riepilogo di fine giornata · {shop} · {date}',
      total_redeemed: 'Incassato',
      total_refunded: 'Rimborsato',
      total_net: 'Totale',
      total_count: 'Operazioni',
      print: 'Stampa il riepilogo',
      printed_at: 'Stampato il {date} alle {time}. I totali sono quelli del registro del server.',
      today_none: 'Nessuna operazione oggi.',
      kind_redemption: 'Spesa',
      kind_capture: 'Consegna',
      kind_refund: 'Rimborso',
      refund_open: 'Rimborsa',
      refund_label: 'Importo da rimborsare',
      refund_go: 'Conferma il rimborso',
      refunded: 'Rimborsati {amount}. Nuovo saldo della carta: {balance}.',
      cancel: 'Annulla',
      scan_key_title: 'Inquadra il QR della chiave del negozio',
      scan_card_title: 'Inquadra il QR della carta',
      camera_starting: 'Avvio della fotocamera…',
      camera_looking: 'Tieni fermo il QR dentro il riquadro.',
      camera_denied: 'Fotocamera non disponibile: scrivi il numero a mano.',
      scanner_failed: 'Lettore QR non disponibile: scrivi il numero a mano.',
      error_generic: 'Rifiutato: {message}',
      error_network: 'Server non raggiungibile: riprova quando torna la connessione.',
      // Declines and refusals, by the API's code.
      e_insufficient_funds: 'Saldo insufficiente: sulla carta restano {balance}.',
      e_insufficient_funds_held: 'Saldo insufficiente: sulla carta restano {balance} ({held} sono prenotati per consegne).',
      e_wrong_pin: 'PIN sbagliato. Dopo 4 PIN sbagliati di fila la carta si blocca.',
      e_wrong_pin_left: 'PIN sbagliato: restano {n} tentativi prima che la carta si blocchi.',
      e_pin_required: 'Questa carta richiede il PIN: fallo scrivere alla persona.',
      e_pin_locked: 'Troppi PIN sbagliati: la carta è bloccata. La famiglia deve chiamare il centro di contatto (l’ufficio carte del Comune) per sbloccarla. Non si può pagare con questa carta finché non è sbloccata.',
      e_card_blocked: 'La carta è bloccata. La famiglia deve rivolgersi all’ufficio carte del Comune.',
      e_card_revoked: 'La carta è stata sostituita o revocata: non si può usare.',
      e_card_expired: 'La carta è scaduta.',
      e_card_not_yet_valid: 'Il programma non è ancora cominciato: la carta non si può ancora usare.',
      e_limit_exceeded: 'L’importo supera il limite del programma (per singola spesa o giornaliero).',
      e_budget_exceeded: 'Il fondo del programma non basta per questa spesa.',
      e_merchant_not_allowed: 'Questo negozio non accetta le carte di questo programma.',
      e_programme_closed: 'Il programma è chiuso: la carta non si può più usare.',
      e_unknown_card: 'Carta sconosciuta: controlla il numero.',
      e_invalid_card: 'Carta non valida: il QR o il numero non è di una carta buoni.',
      e_invalid_amount: 'Importo non valido.',
      e_hold_expired: 'La prenotazione è scaduta: l’importo è tornato sulla carta.',
      e_hold_not_pending: 'La prenotazione non è più aperta (già incassata o annullata).',
      e_amount_exceeds_hold: 'L’importo supera quello prenotato.',
      e_refund_exceeds_redemption: 'Il rimborso supererebbe la spesa (forse è già stata rimborsata).',
      e_idempotency_conflict: 'Questa operazione è già stata fatta con altri dati: ricomincia.',
      e_not_found: 'Non trovato.',
      e_unauthorized: 'La sessione è finita: accedi di nuovo.',
      e_forbidden: 'Operazione non permessa (forse la pagina va ricaricata).',
      e_rate_limited: 'Troppe richieste: aspetta qualche secondo e riprova.',
    },
    en: {
      title: 'Buoni · Till',
      offline_title: 'Server unreachable',
      offline_text: 'No payment can be taken until the connection is back.',
      sign_out: 'Sign out',
      signin_title: 'Shop sign-in',
      signin_hint: 'Show the shop key’s QR to the camera, or type the key (mk_…).',
      signin_scan: 'Scan the shop key’s QR',
      signin_key: 'Shop key',
      signin_go: 'Sign in',
      signin_note: 'The key is not kept on this phone: it only opens the till’s session, which lasts a working day.',
      signin_busy: 'Signing in…',
      signin_wrong: 'Wrong key: check it and try again.',
      signin_malformed: 'A shop key begins with mk_.',
      signin_too_many: 'Too many attempts: wait a minute and try again.',
      signin_failed: 'Sign-in failed ({detail}).',
      signin_ended: 'The session ended: sign in again.',
      signed_out: 'Signed out. See you soon!',
      until: 'until {time}',
      tab_pay: 'Payment',
      tab_holds: 'Deliveries',
      tab_today: 'Today',
      card_scan: 'Scan the card’s QR',
      card_number: 'Card number',
      card_go: 'Read the card',
      card_change: 'Change',
      card_loading: 'Reading the card…',
      check_empty: '16 symbols and 1 check symbol, as printed on the card.',
      check_count: '{n} of 17 symbols',
      check_long: 'Too many symbols: a number has 17.',
      check_char: '“{c}” cannot be in a card number.',
      check_bad: 'The check symbol does not match: probably a typing mistake.',
      check_ok: 'Valid number ✓',
      not_a_card: 'This QR is not a buoni card.',
      not_a_key: 'This QR is not a shop key (mk_…).',
      balance: 'Balance',
      held: '{amount} held for deliveries',
      status_active: 'Card active',
      status_blocked: 'Card blocked: it cannot be used.',
      status_revoked: 'Card replaced or revoked: it cannot be used.',
      status_expired: 'Card expired: it cannot be used.',
      valid_until: 'valid until {date}',
      pin_needed: 'The card’s PIN is needed.',
      over_balance: 'The amount is more than the card’s balance.',
      clear: 'Clear',
      backspace: 'Backspace',
      pin_label: 'Card PIN (5 digits)',
      reference_open: 'Reference (optional)',
      reference_hint: 'receipt or order no.',
      pay_go: 'Charge {amount}',
      pay_go_empty: 'Type the amount',
      hold_open: 'Hold for home delivery',
      hold_expires: 'The hold expires after',
      days_1: '1 day',
      days_3: '3 days',
      days_7: '7 days',
      hold_go: 'Hold {amount}',
      sending: 'Sending…',
      paid: 'Payment accepted',
      new_balance: 'New balance: {amount}',
      receipt: 'Receipt {id}\nledger no. {seq} · {time} · card {card}',
      declined: 'Payment declined',
      held_ok: 'Amount held',
      held_text: 'Hold {id}, expires {when}. On delivery: Deliveries tab, “Charge”.',
      hold_declined: 'Hold declined',
      new_payment: 'New payment',
      back_to_amount: 'Correct and retry',
      what_pay: 'Charge of {amount} on card {card}',
      what_hold: 'Hold of {amount} on card {card}',
      what_capture: 'Charging the delivery: {amount}',
      what_void: 'Cancelling hold {id}',
      what_refund: 'Refund of {amount}',
      pending_title: 'Server unreachable',
      pending_text: 'We do not know whether it was recorded. Retry: if it was already recorded, it will not happen twice.',
      pending_busy: 'The server is busy: retry in a few seconds.',
      pending_server: 'The server had a problem ({status}).',
      retry: 'Retry',
      retrying: 'Retrying…',
      give_up: 'Leave it (check today’s till later)',
      gave_up: 'Not confirmed: check today’s till to see whether it was recorded before doing it again.',
      holds_title: 'Open holds',
      holds_hint: 'For a new hold: Payment, read the card, amount, “Hold”.',
      holds_none: 'No open holds.',
      holds_loading: 'Loading…',
      hold_created: 'held {when}',
      hold_expiry: 'expires {when}',
      hold_soon: 'expires within 24 hours',
      capture_label: 'Delivered (at most {amount})',
      capture_go: 'Charge',
      void_go: 'Cancel hold',
      void_sure: 'Yes, cancel the hold',
      void_no: 'No',
      captured: 'Charged {amount}. New balance: {balance}. Receipt {id}.',
      voided: 'Hold cancelled: {amount} back on the card.',
      amount_bad: 'Type an amount like 12.50.',
      amount_over_hold: 'At most the held amount ({amount}).',
      reload: 'Refresh',
      today_title: 'Today’s till',
      today_print_title: 'End-of-day summary · {shop} · {date}',
      total_redeemed: 'Taken',
      total_refunded: 'Refunded',
      total_net: 'Total',
      total_count: 'Operations',
      print: 'Print the summary',
      printed_at: 'Printed on {date} at {time}. Totals are those of the server’s ledger.',
      today_none: 'No operations today.',
      kind_redemption: 'Purchase',
      kind_capture: 'Delivery',
      kind_refund: 'Refund',
      refund_open: 'Refund',
      refund_label: 'Amount to refund',
      refund_go: 'Confirm the refund',
      refunded: 'Refunded {amount}. The card’s new balance: {balance}.',
      cancel: 'Cancel',
      scan_key_title: 'Show the shop key’s QR',
      scan_card_title: 'Show the card’s QR',
      camera_starting: 'Starting the camera…',
      camera_looking: 'Hold the QR still inside the frame.',
      camera_denied: 'No camera: type the number instead.',
      scanner_failed: 'QR reader unavailable: type the number instead.',
      error_generic: 'Refused: {message}',
      error_network: 'Server unreachable: try again when the connection is back.',
      e_insufficient_funds: 'Not enough on the card: {balance} left.',
      e_insufficient_funds_held: 'Not enough on the card: {balance} left ({held} held for deliveries).',
      e_wrong_pin: 'Wrong PIN. After 4 wrong PINs in a row the card locks.',
      e_wrong_pin_left: 'Wrong PIN: {n} tries left before the card locks.',
      e_pin_required: 'This card needs its PIN: ask the holder to type it.',
      e_pin_locked: 'Too many wrong PINs: the card is locked. The household must call the contact centre (the council’s card office) to unlock it. It cannot pay until then.',
      e_card_blocked: 'The card is blocked. The household must contact the council’s card office.',
      e_card_revoked: 'The card was replaced or revoked: it cannot be used.',
      e_card_expired: 'The card has expired.',
      e_card_not_yet_valid: 'The programme has not started yet: the card cannot be used yet.',
      e_limit_exceeded: 'Over the programme’s limit (per purchase or per day).',
      e_budget_exceeded: 'The programme’s budget is not enough for this purchase.',
      e_merchant_not_allowed: 'This shop does not take this programme’s cards.',
      e_programme_closed: 'The programme is closed: the card can no longer be used.',
      e_unknown_card: 'Unknown card: check the number.',
      e_invalid_card: 'Not a valid card: the QR or number is not a buoni card.',
      e_invalid_amount: 'Not a valid amount.',
      e_hold_expired: 'The hold expired: the amount went back to the card.',
      e_hold_not_pending: 'The hold is no longer open (already charged or cancelled).',
      e_amount_exceeds_hold: 'More than the held amount.',
      e_refund_exceeds_redemption: 'The refund would exceed the purchase (perhaps it was refunded already).',
      e_idempotency_conflict: 'This was already done with other data: start again.',
      e_not_found: 'Not found.',
      e_unauthorized: 'The session ended: sign in again.',
      e_forbidden: 'Not allowed (perhaps the page needs reloading).',
      e_rate_limited: 'Too many requests: wait a few seconds and retry.',
    },
  };

  const LANG_KEY = 'buoni-pos-lang'; // the only thing this page stores
  let lang = pickLanguage();

  function pickLanguage() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved === 'it' || saved === 'en') return saved;
    } catch (_) { /* storage disabled */ }
    for (const l of navigator.languages || [navigator.language || '']) {
      const base = String(l).slice(0, 2).toLowerCase();
      if (base === 'it' || base === 'en') return base;
    }
    return 'it';
  }

  function t(key, vars) {
    let s = TEXT[lang][key] ?? TEXT.it[key] ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    return s;
  }

  // ---------------------------------------------------------------- money
  // 123456 -> "1.234,56 €" (it) or "€1,234.56" (en). Integer math only.
  function formatCents(cents) {
    const negative = cents < 0;
    const abs = negative ? -cents : cents;
    const rest = abs % 100;
    const whole = String((abs - rest) / 100);
    const sep = lang === 'it' ? '.' : ',';
    let grouped = '';
    for (let i = 0; i < whole.length; i++) {
      if (i > 0 && (whole.length - i) % 3 === 0) grouped += sep;
      grouped += whole[i];
    }
    const number = grouped + (lang === 'it' ? ',' : '.') + (rest < 10 ? '0' : '') + rest;
    const sign = negative ? '−' : '';
    return lang === 'it' ? `${sign}${number} €` : `${sign}€${number}`;
  }

  // "12", "12,5", "12,50", "12.50", "€ 12,50" -> cents; anything else -> null.
  function parseAmountText(text) {
    const m = /^(\d{1,6})(?:[.,](\d{1,2}))?$/.exec(String(text).replace(/[\s€]/g, ''));
    if (!m) return null;
    const fraction = m[2] === undefined ? 0 : parseInt(m[2].padEnd(2, '0'), 10);
    return parseInt(m[1], 10) * 100 + fraction;
  }

  // Cents as typed in an amount field, without the currency: "12,50".
  function centsForInput(cents) {
    const rest = cents % 100;
    return `${(cents - rest) / 100}${lang === 'it' ? ',' : '.'}${rest < 10 ? '0' : ''}${rest}`;
  }

  const AMOUNT_MAX = 10000000; // engine limits::amount_cents_max

  // ---------------------------------------------------------------- cards
  // Crockford Base32 card numbers with a mod-37 check symbol, exactly as
  // crypto/card_number.cpp: 16 data symbols (values 0..31) + 1 check symbol,
  // the 80-bit value mod 37 in this alphabet.
  const CHECK_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U';

  function normaliseSymbol(c) {
    const u = c.toUpperCase();
    if (u === 'I' || u === 'L') return '1';
    if (u === 'O') return '0';
    return u;
  }

  // The typed text's symbols and what is wrong with them, if anything:
  // {state: empty|short|long|bad_char|bad_check|ok, symbols, bad}
  function checkCardNumber(text) {
    let symbols = '';
    for (const c of text) {
      if (c === ' ' || c === '-') continue;
      const s = normaliseSymbol(c);
      if (CHECK_ALPHABET.indexOf(s) < 0) return { state: 'bad_char', symbols, bad: c };
      symbols += s;
    }
    if (symbols.length === 0) return { state: 'empty', symbols };
    if (symbols.length > 17) return { state: 'long', symbols };
    for (let i = 0; i < Math.min(symbols.length, 16); i++) {
      if (CHECK_ALPHABET.indexOf(symbols[i]) >= 32) return { state: 'bad_char', symbols, bad: symbols[i] };
    }
    if (symbols.length < 17) return { state: 'short', symbols };
    let remainder = 0;
    for (let i = 0; i < 16; i++) remainder = (remainder * 32 + CHECK_ALPHABET.indexOf(symbols[i])) % 37;
    if (CHECK_ALPHABET[remainder] !== symbols[16]) return { state: 'bad_check', symbols };
    return { state: 'ok', symbols };
  }

  // "ABCD-EFGH-..." grouping of however many symbols there are.
  function groupSymbols(symbols) {
    const parts = [];
    for (let i = 0; i < Math.min(symbols.length, 16); i += 4) parts.push(symbols.slice(i, i + 4));
    if (symbols.length > 16) parts.push(symbols.slice(16));
    return parts.join('-');
  }

  // A card token: the QR text "BS1:" + Base45, or the 106-character link text.
  function isToken(text) {
    return text.startsWith('BS1:') || /^[A-Za-z0-9_-]{106}$/.test(text);
  }

  // What a card QR (or pasted text) holds: a token, a link whose fragment or
  // last path segment is the token (/c/{token}), or a card number.
  function cardFromText(raw) {
    const text = String(raw).replace(/[\r\n]+$/, '');
    if (isToken(text)) return { ref: text, token: true };
    if (/^https?:\/\//i.test(text)) {
      try {
        const url = new URL(text);
        const candidates = [url.hash.slice(1), url.pathname.split('/').filter(Boolean).pop() || ''];
        for (const c of candidates) {
          const decoded = decodeURIComponent(c);
          if (decoded && isToken(decoded)) return { ref: decoded, token: true };
        }
      } catch (_) { /* not a URL */ }
      return null;
    }
    const check = checkCardNumber(text.trim());
    if (check.state === 'ok') return { ref: groupSymbols(check.symbols), token: false };
    return null;
  }

  // ---------------------------------------------------------------- dom
  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function button(className, text, onClick) {
    const b = el('button', className, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function setMsg(id, text, kind) {
    const e = $(id);
    e.textContent = text || '';
    e.className = 'msg' + (kind ? ' ' + kind : '');
  }

  function twoDigits(n) {
    return (n < 10 ? '0' : '') + n;
  }

  function timeText(iso) {
    const d = new Date(iso);
    return `${twoDigits(d.getHours())}:${twoDigits(d.getMinutes())}`;
  }

  function dayText(date) {
    const dd = twoDigits(date.getDate()), mm = twoDigits(date.getMonth() + 1);
    return lang === 'it' ? `${dd}/${mm}/${date.getFullYear()}` : `${date.getFullYear()}-${mm}-${dd}`;
  }

  // "****-****-****-WXYZ-C" (the API's masked number) as "•••• WXYZ-C".
  function shortCard(masked) {
    return String(masked || '').replace(/^(\*{4}-){3}/, '••••\u00a0');
  }

  // "05/12 09:30": a hold's times (a hold lives a week at most).
  function whenText(iso) {
    const d = new Date(iso);
    return `${twoDigits(d.getDate())}/${twoDigits(d.getMonth() + 1)} ${timeText(iso)}`;
  }

  // ---------------------------------------------------------------- http
  const state = {
    session: null, // the session's JSON (merchant_name, expires_at, ...)
    csrf: null, // its CSRF token: in memory only
    online: true,
    restoring: false,
    tab: 'pay',
    holds: null, // the last GET /v1/authorizations list
    today: null, // the last day's till rows
  };

  class NetworkError extends Error {}

  // One request. Answers {status, body, replayed}; throws NetworkError when
  // no answer came (offline, reset, timeout).
  async function request(method, path, { body, key, timeoutMs = 15000 } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (key) headers['Idempotency-Key'] = key;
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    let res;
    try {
      res = await fetch(path, {
        method, headers, body, credentials: 'same-origin', cache: 'no-store',
        redirect: 'error', referrerPolicy: 'no-referrer', signal: abort.signal,
      });
    } catch (e) {
      clearTimeout(timer);
      noteOffline();
      throw new NetworkError(String(e && e.message));
    }
    let text;
    try {
      text = await res.text();
    } catch (e) {
      noteOffline(); // the answer was cut: as good as none
      throw new NetworkError(String(e && e.message));
    } finally {
      clearTimeout(timer);
    }
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (_) {
      json = null; // not JSON (a proxy's error page)
    }
    noteOnline();
    return { status: res.status, body: json, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
  }

  function errorCode(answer) {
    return (answer.body && answer.body.error && answer.body.error.code) || `http_${answer.status}`;
  }

  // A refusal in words: the code's sentence, or the server's message.
  function errorWords(answer) {
    const e = (answer.body && answer.body.error) || {};
    const code = errorCode(answer);
    if (code === 'insufficient_funds' && Number.isSafeInteger(e.balance_cents)) {
      const vars = { balance: formatCents(e.balance_cents), held: formatCents(e.held_cents || 0) };
      return t(e.held_cents > 0 ? 'e_insufficient_funds_held' : 'e_insufficient_funds', vars);
    }
    if (code === 'wrong_pin') {
      const left = [e.tries_left, e.attempts_left, e.remaining_attempts].find(Number.isSafeInteger);
      if (left !== undefined) return t('e_wrong_pin_left', { n: left });
    }
    if (TEXT.it['e_' + code]) return t('e_' + code);
    return t('error_generic', { message: e.message || code });
  }

  // A 401 on a signed-in call: the session is over (expired, revoked, ended).
  function checkSession(answer) {
    if (answer.status === 401 && state.session) {
      endSessionLocally();
      setMsg('signin-msg', t('signin_ended'), 'bad');
    }
  }

  // ---------------------------------------------------------------- money calls
  function newIdempotencyKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return 'pos-' + btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function definitive(answer) {
    const s = answer.status;
    return (s >= 200 && s < 300) || (s >= 400 && s < 500 && s !== 408 && s !== 429);
  }

  // POSTs `body` to `path` under a fresh Idempotency-Key until a definitive
  // answer comes or the cashier gives up ({abandoned: true}). `what()` says
  // what is being done, for the retry dialog.
  async function moneyCall(what, path, body) {
    const attempt = { path, body: JSON.stringify(body), key: newIdempotencyKey() };
    let csrfRefreshed = false;
    try {
      for (;;) {
        let reason = '';
        try {
          const answer = await request('POST', attempt.path, { body: attempt.body, key: attempt.key });
          // A CSRF refusal is answered before anything is done: fetch the
          // session's token again and resend, once.
          if (answer.status === 403 && /csrf/i.test(errorCode(answer)) && !csrfRefreshed) {
            csrfRefreshed = true;
            if (await refreshCsrf()) continue;
          }
          if (definitive(answer)) {
            checkSession(answer);
            return answer;
          }
          reason = answer.status === 429 || answer.status === 503
            ? t('pending_busy') : t('pending_server', { status: answer.status });
        } catch (e) {
          if (!(e instanceof NetworkError)) throw e;
        }
        if (!(await askRetry(what, reason))) return { abandoned: true };
      }
    } finally {
      $('pending').hidden = true;
    }
  }

  // The retry dialog: resolves true on Retry (it stays up, saying so, until
  // the answer), false on Give up.
  function askRetry(what, reason) {
    state.pendingWhat = what;
    $('pending-what').textContent = what();
    setMsg('pending-msg', reason, reason ? 'warn' : '');
    $('pending').hidden = false;
    $('pending-retry').disabled = false;
    $('pending-retry').focus();
    return new Promise((resolve) => {
      $('pending-retry').onclick = () => {
        $('pending-retry').disabled = true;
        setMsg('pending-msg', t('retrying'));
        resolve(true);
      };
      $('pending-giveup').onclick = () => resolve(false);
    });
  }

  async function refreshCsrf() {
    try {
      const a = await request('GET', '/v1/sessions/current');
      if (a.status !== 200 || !a.body || !a.body.csrf_token) return false;
      state.csrf = a.body.csrf_token;
      return true;
    } catch (_) {
      return false;
    }
  }

  // ---------------------------------------------------------------- health
  let healthTimer = null;

  function noteOffline() {
    if (state.online) {
      state.online = false;
      $('offline').hidden = false;
    }
    scheduleHealth(2000);
  }

  function noteOnline() {
    if (!state.online) {
      state.online = true;
      $('offline').hidden = true;
      if (!state.session && !state.restoring) restoreSession();
    }
  }

  function scheduleHealth(ms) {
    clearTimeout(healthTimer);
    healthTimer = setTimeout(checkHealth, ms);
  }

  async function checkHealth() {
    try {
      const a = await request('GET', '/healthz', { timeoutMs: 5000 });
      if (a.status !== 200) throw new NetworkError('status ' + a.status);
      noteOnline();
      scheduleHealth(10000);
    } catch (_) {
      noteOffline();
      scheduleHealth(state.online ? 10000 : 3000);
    }
  }

  // ---------------------------------------------------------------- screens
  function showScreen(name) {
    for (const s of document.querySelectorAll('.screen')) s.hidden = s.id !== 'screen-' + name;
    const signedIn = name !== 'signin';
    $('tabs').hidden = !signedIn;
    $('signout').hidden = !signedIn;
    for (const b of document.querySelectorAll('.tab')) {
      b.classList.toggle('active', b.dataset.tab === name);
      b.setAttribute('aria-selected', String(b.dataset.tab === name));
    }
  }

  function openTab(name) {
    state.tab = name;
    showScreen(name);
    if (name === 'holds') loadHolds();
    if (name === 'today') loadToday();
  }

  function renderHeader() {
    const s = state.session;
    $('shop-name').textContent = s ? s.merchant_name || s.merchant_id : t('title');
    $('shop-until').textContent = s && s.expires_at ? t('until', { time: timeText(s.expires_at) }) : '';
  }

  // ---------------------------------------------------------------- session
  async function restoreSession() {
    state.restoring = true;
    try {
      const a = await request('GET', '/v1/sessions/current');
      if (a.status === 200 && a.body) return startSession(a.body);
      showScreen('signin');
    } catch (_) {
      showScreen('signin'); // the banner says why; restored when the server is back
    } finally {
      state.restoring = false;
    }
  }

  function startSession(body) {
    state.session = body;
    state.csrf = body.csrf_token || null;
    renderHeader();
    resetPayment();
    openTab('pay');
  }

  function endSessionLocally() {
    state.session = null;
    state.csrf = null;
    state.holds = null;
    state.today = null;
    $('holds-list').replaceChildren();
    $('today-list').replaceChildren();
    resetPayment();
    renderHeader();
    showScreen('signin');
  }

  async function signIn(rawKey) {
    const key = String(rawKey).trim();
    $('signin-key').value = '';
    if (!/^mk_[A-Za-z0-9_-]{8,200}$/.test(key)) return setMsg('signin-msg', t('signin_malformed'), 'bad');
    $('signin-go').disabled = true;
    setMsg('signin-msg', t('signin_busy'));
    try {
      const a = await request('POST', '/v1/sessions', { body: JSON.stringify({ api_key: key }) });
      if (a.status === 201 && a.body) {
        setMsg('signin-msg', '');
        return startSession(a.body);
      }
      if (a.status === 401) return setMsg('signin-msg', t('signin_wrong'), 'bad');
      if (a.status === 429) return setMsg('signin-msg', t('signin_too_many'), 'bad');
      setMsg('signin-msg', t('signin_failed', { detail: errorCode(a) }), 'bad');
    } catch (_) {
      setMsg('signin-msg', t('error_network'), 'bad');
    } finally {
      $('signin-go').disabled = false;
    }
  }

  async function signOut() {
    $('signout').disabled = true;
    try {
      await request('POST', '/v1/sessions/current/end', { body: '{}' });
    } catch (_) {
      /* the cookie may live on in the server until it expires; nothing here keeps it */
    } finally {
      $('signout').disabled = false;
    }
    endSessionLocally();
    setMsg('signin-msg', t('signed_out'), 'good');
  }

  // ---------------------------------------------------------------- scanner
  const scanner = { stream: null, timer: 0, finish: null, canvas: null, detector: null, run: 0 };
  let jsqrLoading = null;

  // jsQR (node_modules/jsqr, served as /pos/jsqr.js), loaded on first use.
  function loadJsQR() {
    if (window.jsQR) return Promise.resolve(window.jsQR);
    if (!jsqrLoading) {
      jsqrLoading = new Promise((resolve, reject) => {
        const s = document.createElement('script');
        s.src = '/pos/jsqr.js';
        s.onload = () => (window.jsQR ? resolve(window.jsQR) : reject(new Error('jsQR missing')));
        s.onerror = () => { jsqrLoading = null; reject(new Error('jsQR failed to load')); };
        document.head.appendChild(s);
      });
    }
    return jsqrLoading;
  }

  async function makeDetector() {
    if (!('BarcodeDetector' in window)) return null;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      return formats.includes('qr_code') ? new window.BarcodeDetector({ formats: ['qr_code'] }) : null;
    } catch (_) {
      return null;
    }
  }

  // Opens the camera until a QR that `accept` takes is seen (its text) or
  // the cashier cancels (null). `accept(text)` answers true, or a message.
  function scan(titleKey, accept) {
    stopScan(null);
    $('scanner-title').textContent = t(titleKey);
    setMsg('scanner-msg', t('camera_starting'));
    $('scanner').hidden = false;
    return new Promise((resolve) => {
      scanner.finish = resolve;
      const run = ++scanner.run;
      startCamera(accept, run).catch(() => { if (run === scanner.run) setMsg('scanner-msg', t('camera_denied'), 'bad'); });
    });
  }

  // `run` tells this opening of the scanner from a later one.
  async function startCamera(accept, run) {
    const decoderReady = makeDetector().then((d) => d || loadJsQR().then(() => null));
    decoderReady.catch(() => {}); // awaited below, once the camera is on
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error('no camera');
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
    });
    if (run !== scanner.run || !scanner.finish) return stream.getTracks().forEach((tr) => tr.stop()); // cancelled meanwhile
    scanner.stream = stream;
    const video = $('scanner-video');
    video.srcObject = stream;
    await video.play().catch(() => {});
    try {
      scanner.detector = await decoderReady;
    } catch (_) {
      return setMsg('scanner-msg', t('scanner_failed'), 'bad');
    }
    setMsg('scanner-msg', t('camera_looking'));
    if (run !== scanner.run) return;
    const tick = async () => {
      if (run !== scanner.run || !scanner.stream) return;
      const text = await decodeFrame(video).catch(() => null);
      if (run !== scanner.run || !scanner.stream) return;
      if (text !== null) {
        const verdict = accept(text);
        if (verdict === true) return stopScan(text);
        setMsg('scanner-msg', verdict, 'bad');
      }
      scanner.timer = setTimeout(tick, 100);
    };
    tick();
  }

  // The text of a QR in the video's current frame, or null.
  async function decodeFrame(video) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    if (scanner.detector) {
      const codes = await scanner.detector.detect(video);
      return codes.length ? codes[0].rawValue : null;
    }
    const scale = Math.min(1, 960 / Math.max(w, h));
    const cw = Math.round(w * scale), ch = Math.round(h * scale);
    if (!scanner.canvas) scanner.canvas = document.createElement('canvas');
    const canvas = scanner.canvas;
    if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(video, 0, 0, cw, ch);
    const found = window.jsQR(ctx.getImageData(0, 0, cw, ch).data, cw, ch, { inversionAttempts: 'dontInvert' });
    return found && found.data ? found.data : null;
  }

  function stopScan(result) {
    scanner.run++;
    clearTimeout(scanner.timer);
    if (scanner.stream) scanner.stream.getTracks().forEach((tr) => tr.stop());
    scanner.stream = null;
    $('scanner-video').srcObject = null;
    $('scanner').hidden = true;
    const finish = scanner.finish;
    scanner.finish = null;
    if (finish) finish(result);
  }

  // ---------------------------------------------------------------- payment
  const pay = {
    card: null, // {ref (what is sent), token, info (GET /v1/cards answer)}
    cents: 0,
    busy: false,
    result: null, // () => the result screen's texts
  };

  function resetPayment() {
    pay.card = null;
    pay.cents = 0;
    pay.busy = false;
    $('card-number').value = '';
    $('pin').value = '';
    $('reference').value = '';
    $('hold-box').hidden = true;
    renderCardCheck();
    setMsg('card-msg', '');
    setMsg('pay-msg', '');
    showPayStep('card');
  }

  function showPayStep(step) {
    $('pay-card-step').hidden = step !== 'card';
    $('pay-amount-step').hidden = step !== 'amount';
    $('pay-result').hidden = step !== 'result';
  }

  function renderCardCheck() {
    const input = $('card-number');
    const text = input.value;
    const looksToken = isToken(text) || /^https?:/i.test(text);
    const c = looksToken ? { state: cardFromText(text) ? 'ok' : 'bad_char', symbols: '' } : checkCardNumber(text);
    let msg = '', kind = '';
    switch (c.state) {
      case 'empty': msg = t('check_empty'); break;
      case 'short': msg = t('check_count', { n: c.symbols.length }); break;
      case 'long': msg = t('check_long'); kind = 'bad'; break;
      case 'bad_char': msg = looksToken ? t('not_a_card') : t('check_char', { c: c.bad }); kind = 'bad'; break;
      case 'bad_check': msg = t('check_bad'); kind = 'bad'; break;
      case 'ok': msg = t('check_ok'); kind = 'good'; break;
    }
    $('card-check').textContent = msg;
    $('card-check').className = 'check ' + kind;
    $('card-go').disabled = c.state !== 'ok';
    input.classList.toggle('invalid', kind === 'bad');
    return c;
  }

  // Regroups the number as the cashier types (XXXX-XXXX-XXXX-XXXX-C).
  function onCardInput() {
    const input = $('card-number');
    const text = input.value;
    if (!isToken(text) && !/^https?:/i.test(text)) {
      const c = checkCardNumber(text);
      if (c.state !== 'bad_char') {
        const atEnd = input.selectionStart === text.length;
        const grouped = groupSymbols(c.symbols) + (/[-\s]$/.test(text) && c.symbols.length % 4 === 0 && c.symbols.length > 0 && c.symbols.length < 17 ? '-' : '');
        if (grouped !== text && atEnd) input.value = grouped;
      }
    }
    renderCardCheck();
  }

  async function onCardSubmit(event) {
    event.preventDefault();
    const card = cardFromText($('card-number').value.trim());
    if (!card) return renderCardCheck(); // refused here: nothing is sent
    await lookUpCard(card);
  }

  async function onCardScan() {
    const text = await scan('scan_card_title', (s) => (cardFromText(s) ? true : t('not_a_card')));
    if (text === null) return;
    await lookUpCard(cardFromText(text));
  }

  async function lookUpCard(card) {
    $('card-go').disabled = true;
    setMsg('card-msg', t('card_loading'));
    try {
      const a = await request('GET', '/v1/cards/' + encodeURIComponent(card.ref));
      checkSession(a);
      if (a.status !== 200 || !a.body) return setMsg('card-msg', errorWords(a), 'bad');
      setMsg('card-msg', '');
      pay.card = { ...card, info: a.body };
      pay.cents = 0;
      $('pin').value = '';
      $('card-number').value = '';
      renderCardCheck();
      renderCard();
      renderAmount();
      showPayStep('amount');
    } catch (_) {
      setMsg('card-msg', t('error_network'), 'bad');
    } finally {
      renderCardCheck();
    }
  }

  function renderCard() {
    const info = pay.card.info;
    $('card-shown').textContent = info.number || groupSymbols(info.id || '');
    $('card-balance').textContent = formatCents(info.balance_cents);
    const status = info.status || 'active';
    const parts = [t('status_' + status)];
    if (status === 'active' && info.expires_at) parts.push(t('valid_until', { date: dayText(new Date(info.expires_at + 'T00:00:00')) }));
    if (info.held_cents > 0) parts.push(t('held', { amount: formatCents(info.held_cents) }));
    $('card-status').textContent = parts.join(' · ');
    $('card-status').className = 'status ' + (status === 'active' ? 'good' : 'bad');
    $('pin-box').hidden = !info.pin_required;
  }

  function cardUsable() {
    return pay.card && (pay.card.info.status || 'active') === 'active';
  }

  function pinReady() {
    return !pay.card.info.pin_required || /^\d{5}$/.test($('pin').value);
  }

  function renderAmount() {
    $('amount').textContent = formatCents(pay.cents);
    const ready = pay.card && pay.cents > 0 && cardUsable() && pinReady() && !pay.busy;
    $('pay-go').disabled = !ready;
    $('hold-go').disabled = !ready;
    $('pay-go').textContent = pay.busy ? t('sending') : pay.cents > 0 ? t('pay_go', { amount: formatCents(pay.cents) }) : t('pay_go_empty');
    $('hold-go').textContent = t('hold_go', { amount: formatCents(pay.cents) });
    let hint = '';
    if (pay.card && pay.cents > pay.card.info.balance_cents) hint = t('over_balance');
    else if (pay.card && pay.cents > 0 && !pinReady()) hint = t('pin_needed');
    setMsg('pay-hint', hint, hint ? 'warn' : '');
  }

  function onKey(key) {
    if (pay.busy) return;
    let next = pay.cents;
    if (key === 'back') next = (pay.cents - (pay.cents % 10)) / 10;
    else if (key === 'clear') next = 0;
    else if (key === '00') next = pay.cents * 100;
    else next = pay.cents * 10 + Number(key);
    if (next > AMOUNT_MAX) return;
    pay.cents = next;
    renderAmount();
  }

  function onKeyboard(event) {
    if (state.tab !== 'pay' || $('pay-amount-step').hidden || !$('pending').hidden) return;
    const target = event.target;
    if (target && (target.tagName === 'INPUT' || target.tagName === 'SELECT' || target.tagName === 'TEXTAREA')) return;
    if (/^[0-9]$/.test(event.key)) onKey(event.key);
    else if (event.key === 'Backspace') onKey('back');
    else if (event.key === 'Escape') onKey('clear');
    else return;
    event.preventDefault();
  }

  function spendBody() {
    const body = { card: pay.card.ref, amount_cents: pay.cents };
    if (pay.card.info.pin_required) body.pin = $('pin').value;
    const reference = $('reference').value.trim();
    if (reference) body.reference = reference;
    return body;
  }

  function setPayBusy(busy) {
    pay.busy = busy;
    for (const b of document.querySelectorAll('#keypad button, #key-clear, #card-change, #hold-open')) b.disabled = busy;
    $('pin').disabled = busy;
    renderAmount();
  }

  async function onPay() {
    if (pay.busy || !cardUsable() || pay.cents <= 0 || !pinReady()) return;
    setPayBusy(true); // before anything else: a second tap finds it busy
    setMsg('pay-msg', '');
    const cents = pay.cents;
    const what = () => t('what_pay', { amount: formatCents(cents), card: pay.card.info.number });
    try {
      const a = await moneyCall(what, '/v1/redemptions', spendBody());
      if (a.abandoned) return setMsg('pay-msg', t('gave_up'), 'bad');
      if (a.status === 201 && a.body) return showPaid(a.body);
      showDecline(a, 'declined');
    } catch (_) {
      setMsg('pay-msg', t('error_network'), 'bad');
    } finally {
      setPayBusy(false);
    }
  }

  async function onHold() {
    if (pay.busy || !cardUsable() || pay.cents <= 0 || !pinReady()) return;
    setPayBusy(true);
    setMsg('pay-msg', '');
    const body = spendBody();
    body.expires_in_s = parseInt($('hold-expires').value, 10);
    const cents = pay.cents;
    const what = () => t('what_hold', { amount: formatCents(cents), card: pay.card.info.number });
    try {
      const a = await moneyCall(what, '/v1/authorizations', body);
      if (a.abandoned) return setMsg('pay-msg', t('gave_up'), 'bad');
      if (a.status === 201 && a.body) return showHeld(a.body);
      showDecline(a, 'hold_declined');
    } catch (_) {
      setMsg('pay-msg', t('error_network'), 'bad');
    } finally {
      setPayBusy(false);
    }
  }

  // `words()` makes the result's texts: called again when the language changes.
  function showResult(words) {
    pay.result = words;
    renderResult();
    showPayStep('result');
    $('result-again').focus();
  }

  function renderResult() {
    const r = pay.result();
    $('pay-result').className = 'result ' + r.kind;
    $('result-title').textContent = r.title;
    $('result-amount').textContent = r.amount || '';
    $('result-text').textContent = r.text;
    $('result-receipt').textContent = r.receipt || '';
    $('result-back').hidden = !r.canCorrect;
  }

  function showPaid(body) {
    const r = body.receipt || body;
    pay.card.info.balance_cents = body.balance_cents;
    showResult(() => ({
      kind: 'good', title: t('paid'), amount: formatCents(body.amount_cents),
      text: t('new_balance', { amount: formatCents(body.balance_cents) }),
      receipt: t('receipt', { id: r.id, seq: r.ledger_seq, time: timeText(r.created_at), card: shortCard(r.card_number || body.card_number) }),
    }));
  }

  function showHeld(body) {
    pay.card.info.balance_cents = body.balance_cents;
    showResult(() => ({
      kind: 'good', title: t('held_ok'), amount: formatCents(body.amount_cents),
      text: `${t('held_text', { id: body.id, when: whenText(body.expires_at) })} ${t('new_balance', { amount: formatCents(body.balance_cents) })}`,
    }));
  }

  const CORRECTABLE = ['insufficient_funds', 'wrong_pin', 'pin_required', 'limit_exceeded', 'invalid_amount', 'invalid_field', 'budget_exceeded'];

  function showDecline(answer, titleKey) {
    const code = errorCode(answer);
    const e = (answer.body && answer.body.error) || {};
    if (code === 'insufficient_funds' && Number.isSafeInteger(e.balance_cents)) pay.card.info.balance_cents = e.balance_cents;
    if (code === 'pin_locked' || code === 'card_blocked') pay.card.info.status = 'blocked';
    $('pin').value = '';
    showResult(() => ({
      kind: 'bad', title: t(titleKey), text: errorWords(answer), receipt: code, canCorrect: CORRECTABLE.includes(code),
    }));
  }

  function backToAmount() {
    renderCard();
    renderAmount();
    showPayStep('amount');
    if (!$('pin-box').hidden) $('pin').focus();
  }

  // ---------------------------------------------------------------- holds
  async function loadHolds() {
    setMsg('holds-msg', t('holds_loading'));
    try {
      const a = await request('GET', '/v1/authorizations');
      checkSession(a);
      if (a.status !== 200 || !a.body) return setMsg('holds-msg', errorWords(a), 'bad');
      state.holds = a.body.authorizations || [];
      renderHolds(state.holds);
    } catch (_) {
      setMsg('holds-msg', t('error_network'), 'bad');
    }
  }

  function renderHolds(holds) {
    setMsg('holds-msg', holds.length ? '' : t('holds_none'));
    const list = $('holds-list');
    list.replaceChildren();
    const soon = Date.now() + 24 * 3600 * 1000;
    holds = holds.slice().sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at));
    for (const h of holds) list.appendChild(holdItem(h, Date.parse(h.expires_at) <= soon));
  }

  function holdItem(h, expiringSoon) {
    const li = el('li', 'item' + (expiringSoon ? ' soon' : ''));
    li.dataset.hold = h.id;
    const head = el('div', 'row');
    head.append(el('strong', 'money', formatCents(h.amount_cents)), el('span', 'mono', shortCard(h.card_number)));
    li.appendChild(head);
    if (h.reference) li.appendChild(el('div', 'ref', h.reference));
    const times = el('div', 'row sub');
    times.append(el('span', '', t('hold_created', { when: whenText(h.created_at) })), el('span', 'expiry', t('hold_expiry', { when: whenText(h.expires_at) })));
    li.appendChild(times);
    if (expiringSoon) li.appendChild(el('div', 'tag warn', t('hold_soon')));

    const label = el('label', 'sub', t('capture_label', { amount: formatCents(h.amount_cents) }));
    const input = el('input', 'amount-input');
    input.type = 'text';
    input.inputMode = 'decimal';
    input.autocomplete = 'off';
    input.value = centsForInput(h.amount_cents);
    input.id = 'capture-' + h.id;
    label.htmlFor = input.id;
    const msg = el('p', 'msg');
    msg.setAttribute('role', 'status');
    const actions = el('div', 'actions');
    const capture = button('primary capture', t('capture_go'), () => onCapture(h, li, input, msg, actions));
    const voidBtn = button('secondary void', t('void_go'), () => askVoid(h, li, msg, actions));
    actions.append(capture, voidBtn);
    li.append(label, input, actions, msg);
    return li;
  }

  function setButtonsDisabled(container, disabled) {
    for (const b of container.querySelectorAll('button, input')) b.disabled = disabled;
  }

  // A hold's row once captured or voided: the result instead of the controls.
  function holdDone(li, msg, text) {
    li.classList.add('done');
    for (const e of li.querySelectorAll('.actions, .amount-input, label')) e.remove();
    setMsgEl(msg, text, 'good');
  }

  async function onCapture(h, li, input, msg) {
    if (li.dataset.busy) return;
    const cents = parseAmountText(input.value);
    if (cents === null || cents <= 0) return setMsgEl(msg, t('amount_bad'), 'bad');
    if (cents > h.amount_cents) return setMsgEl(msg, t('amount_over_hold', { amount: formatCents(h.amount_cents) }), 'bad');
    li.dataset.busy = '1';
    setButtonsDisabled(li, true);
    setMsgEl(msg, t('sending'));
    try {
      const a = await moneyCall(() => t('what_capture', { amount: formatCents(cents) }),
        `/v1/authorizations/${encodeURIComponent(h.id)}/capture`, { amount_cents: cents });
      if (a.abandoned) return setMsgEl(msg, t('gave_up'), 'bad');
      if (a.status === 201 && a.body) {
        const r = a.body.receipt || a.body;
        return holdDone(li, msg, t('captured', { amount: formatCents(a.body.amount_cents), balance: formatCents(a.body.balance_cents), id: r.id }));
      }
      setMsgEl(msg, errorWords(a), 'bad');
    } finally {
      delete li.dataset.busy;
      setButtonsDisabled(li, false);
    }
  }

  function askVoid(h, li, msg, actions) {
    if (li.dataset.busy) return;
    const confirmBox = el('div', 'actions confirm');
    const yes = button('danger void-yes', t('void_sure'), () => { confirmBox.remove(); actions.hidden = false; onVoid(h, li, msg); });
    const no = button('quiet', t('void_no'), () => { confirmBox.remove(); actions.hidden = false; });
    confirmBox.append(yes, no);
    actions.hidden = true;
    actions.after(confirmBox);
  }

  async function onVoid(h, li, msg) {
    if (li.dataset.busy) return;
    li.dataset.busy = '1';
    setButtonsDisabled(li, true);
    setMsgEl(msg, t('sending'));
    try {
      const a = await moneyCall(() => t('what_void', { id: h.id }), `/v1/authorizations/${encodeURIComponent(h.id)}/void`, {});
      if (a.abandoned) return setMsgEl(msg, t('gave_up'), 'bad');
      if (a.status === 200) return holdDone(li, msg, t('voided', { amount: formatCents(h.amount_cents) }));
      setMsgEl(msg, errorWords(a), 'bad');
    } finally {
      delete li.dataset.busy;
      setButtonsDisabled(li, false);
    }
  }

  function setMsgEl(e, text, kind) {
    e.textContent = text || '';
    e.className = 'msg' + (kind ? ' ' + kind : '');
  }

  // ---------------------------------------------------------------- today
  // Local midnight as RFC 3339 with the local offset: 2026-04-01T00:00:00+02:00.
  function localMidnight(date) {
    const d = new Date(date.getFullYear(), date.getMonth(), date.getDate());
    const offset = -d.getTimezoneOffset();
    const sign = offset < 0 ? '-' : '+';
    const abs = Math.abs(offset);
    return `${d.getFullYear()}-${twoDigits(d.getMonth() + 1)}-${twoDigits(d.getDate())}T00:00:00` +
      `${sign}${twoDigits((abs - (abs % 60)) / 60)}:${twoDigits(abs % 60)}`;
  }

  const TILL_KINDS = ['redemption', 'capture', 'refund'];

  async function fetchToday() {
    const now = new Date();
    const from = localMidnight(now);
    const to = localMidnight(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1));
    const rows = [];
    let cursor = '';
    for (let page = 0; page < 50; page++) {
      const q = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&limit=500` +
        (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
      const a = await request('GET', '/v1/transactions?' + q);
      checkSession(a);
      if (a.status !== 200 || !a.body) return { error: a };
      rows.push(...(a.body.transactions || []).filter((r) => TILL_KINDS.includes(r.kind)));
      cursor = a.body.next_cursor || '';
      if (!cursor) break;
    }
    return { rows };
  }

  async function loadToday() {
    setMsg('today-msg', t('holds_loading'));
    $('today-title').textContent = t('today_title');
    try {
      const r = await fetchToday();
      if (r.error) return setMsg('today-msg', errorWords(r.error), 'bad');
      state.today = r.rows;
      renderToday(r.rows);
    } catch (_) {
      setMsg('today-msg', t('error_network'), 'bad');
    }
  }

  function renderToday(rows) {
    setMsg('today-msg', rows.length ? '' : t('today_none'));
    $('today-title').textContent = t('today_title');
    let redeemed = 0, refunded = 0;
    for (const r of rows) {
      if (r.kind === 'refund') refunded += r.amount_cents;
      else redeemed += r.amount_cents;
    }
    $('total-redeemed').textContent = formatCents(redeemed);
    $('total-refunded').textContent = formatCents(refunded);
    $('total-net').textContent = formatCents(redeemed - refunded);
    $('total-count').textContent = String(rows.length);
    const list = $('today-list');
    list.replaceChildren();
    for (const r of rows.slice().reverse()) list.appendChild(todayItem(r)); // newest first
  }

  function todayItem(r) {
    const li = el('li', 'item ' + r.kind);
    li.dataset.id = r.id;
    const head = el('div', 'row');
    const amount = r.kind === 'refund' ? -r.amount_cents : r.amount_cents;
    head.append(el('span', 'kind', `${timeText(r.created_at)} · ${t('kind_' + r.kind)}`), el('strong', 'money', formatCents(amount)));
    const line = el('div', 'row');
    line.appendChild(el('span', 'sub mono', `${shortCard(r.card_number)} · ${r.id}`));
    li.append(head, line);
    if (r.kind !== 'refund') {
      const msg = el('p', 'msg');
      const open = button('quiet small refund noprint', t('refund_open'), () => openRefund(r, li, open, msg));
      line.appendChild(open);
      li.appendChild(msg);
    }
    return li;
  }

  function openRefund(r, li, open, msg) {
    open.hidden = true;
    const box = el('div', 'refund-box noprint');
    const label = el('label', 'sub', t('refund_label'));
    const input = el('input', 'amount-input');
    input.type = 'text';
    input.inputMode = 'decimal';
    input.autocomplete = 'off';
    input.value = centsForInput(r.amount_cents);
    input.id = 'refund-' + r.id;
    label.htmlFor = input.id;
    const actions = el('div', 'actions');
    const go = button('danger refund-go', t('refund_go'), () => onRefund(r, input, box, msg));
    const cancel = button('quiet', t('cancel'), () => { box.remove(); open.hidden = false; setMsgEl(msg, ''); });
    actions.append(go, cancel);
    box.append(label, input, actions);
    msg.before(box);
    input.focus();
  }

  async function onRefund(r, input, box, msg) {
    if (box.dataset.busy) return;
    const cents = parseAmountText(input.value);
    if (cents === null || cents <= 0) return setMsgEl(msg, t('amount_bad'), 'bad');
    box.dataset.busy = '1';
    setButtonsDisabled(box, true);
    setMsgEl(msg, t('sending'));
    try {
      const a = await moneyCall(() => t('what_refund', { amount: formatCents(cents) }), '/v1/refunds',
        { redemption_id: r.id, amount_cents: cents });
      if (a.abandoned) return setMsgEl(msg, t('gave_up'), 'bad');
      if (a.status === 201 && a.body) {
        const done = t('refunded', { amount: formatCents(a.body.amount_cents), balance: formatCents(a.body.balance_cents) });
        await loadToday();
        const row = document.querySelector(`#today-list li[data-id="${CSS.escape(r.id)}"] .msg`);
        if (row) setMsgEl(row, done, 'good');
        return;
      }
      setMsgEl(msg, errorWords(a), 'bad');
    } finally {
      delete box.dataset.busy;
      setButtonsDisabled(box, false);
    }
  }

  function printToday() {
    const now = new Date();
    const shop = state.session ? state.session.merchant_name || state.session.merchant_id : '';
    $('today-title').textContent = t('today_print_title', { shop, date: dayText(now) });
    $('print-foot').textContent = t('printed_at', { date: dayText(now), time: `${twoDigits(now.getHours())}:${twoDigits(now.getMinutes())}` });
    window.print();
  }

  // ---------------------------------------------------------------- language
  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t('title');
    for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
    for (const e of document.querySelectorAll('[data-i18n-placeholder]')) e.placeholder = t(e.dataset.i18nPlaceholder);
    for (const e of document.querySelectorAll('[data-i18n-label]')) e.setAttribute('aria-label', t(e.dataset.i18nLabel));
    const other = lang === 'it' ? 'en' : 'it';
    $('lang').textContent = other.toUpperCase();
    $('lang').setAttribute('aria-label', other === 'en' ? 'English' : 'Italiano');
    renderHeader();
    renderCardCheck();
    if (pay.card) { renderCard(); renderAmount(); }
    if (pay.result && !$('pay-result').hidden) renderResult();
    if (state.holds) renderHolds(state.holds);
    if (state.today) renderToday(state.today);
    if (!$('pending').hidden && state.pendingWhat) $('pending-what').textContent = state.pendingWhat();
  }

  function toggleLanguage() {
    lang = lang === 'it' ? 'en' : 'it';
    try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* not kept */ }
    applyLanguage();
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    $('lang').addEventListener('click', toggleLanguage);
    $('signout').addEventListener('click', signOut);
    $('signin-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('signin-key').value); });
    $('signin-scan').addEventListener('click', async () => {
      const text = await scan('scan_key_title', (s) => (s.trim().startsWith('mk_') ? true : t('not_a_key')));
      if (text !== null) signIn(text);
    });
    for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => openTab(b.dataset.tab));
    $('card-number').addEventListener('input', onCardInput);
    $('card-form').addEventListener('submit', onCardSubmit);
    $('card-scan').addEventListener('click', onCardScan);
    $('card-change').addEventListener('click', resetPayment);
    $('keypad').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-key]');
      if (b) onKey(b.dataset.key);
    });
    $('key-clear').addEventListener('click', () => onKey('clear'));
    $('pin').addEventListener('input', () => {
      const digits = $('pin').value.replace(/\D/g, '').slice(0, 5);
      if (digits !== $('pin').value) $('pin').value = digits;
      renderAmount();
    });
    $('pay-go').addEventListener('click', onPay);
    $('hold-open').addEventListener('click', () => { $('hold-box').hidden = !$('hold-box').hidden; });
    $('hold-go').addEventListener('click', onHold);
    $('result-again').addEventListener('click', resetPayment);
    $('result-back').addEventListener('click', backToAmount);
    $('holds-reload').addEventListener('click', loadHolds);
    $('today-reload').addEventListener('click', loadToday);
    $('today-print').addEventListener('click', printToday);
    window.addEventListener('afterprint', () => { $('today-title').textContent = t('today_title'); });
    $('scanner-close').addEventListener('click', () => stopScan(null));
    document.addEventListener('keydown', onKeyboard);
  }

  function start() {
    wire();
    applyLanguage();
    restoreSession();
    scheduleHealth(10000);
  }

  // For tests and the console: pure helpers only (no state, no secrets).
  window.buoniPos = Object.freeze({ checkCardNumber, cardFromText, formatCents, parseAmountText, localMidnight });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
