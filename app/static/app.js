/* 计量客户服务平台 — small page behaviours, opted into with data-* attributes.
 *
 * The CSP allows no inline script, so templates never carry handlers; every
 * listener here is delegated on `document`, which keeps working after htmx
 * swaps in new markup and does nothing on pages that lack the elements.
 * `htmx` is a global (loaded before this file, both `defer`) but is only
 * used when present.
 */
(() => {
  'use strict';

  const hasHtmx = () => typeof window.htmx !== 'undefined';

  // closest() guarded for text nodes and other non-Element targets.
  const closest = (target, selector) =>
    target instanceof Element ? target.closest(selector) : null;

  /* ------------------------------------------------------------------
   * 1. Off-canvas menu (below 900 px the sidebar is a drawer)
   * ------------------------------------------------------------------ */
  const narrow = window.matchMedia('(max-width: 899.98px)');

  const getSidebar = () => document.getElementById('sidebar');
  const menuIsOpen = () => getSidebar()?.classList.contains('open') ?? false;

  function setMenu(open) {
    const sidebar = getSidebar();
    if (!sidebar) return;
    sidebar.classList.toggle('open', open);
    document.querySelectorAll('[data-menu-toggle]').forEach((btn) => {
      btn.setAttribute('aria-expanded', String(open));
    });
  }

  // Capture phase so a tap on the dimmed page only closes the drawer and
  // does not also activate whatever lies underneath it.
  document.addEventListener('click', (e) => {
    if (!menuIsOpen() || !narrow.matches) return;
    if (closest(e.target, '#sidebar') || closest(e.target, '[data-menu-toggle]')) return;
    e.preventDefault();
    e.stopPropagation();
    setMenu(false);
  }, true);

  document.addEventListener('click', (e) => {
    if (closest(e.target, '[data-menu-toggle]')) {
      setMenu(!menuIsOpen());
      return;
    }
    // Following a menu link (incl. hx-boosted ones) should reveal the page.
    if (menuIsOpen() && closest(e.target, '#sidebar a')) setMenu(false);
  });

  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented || !menuIsOpen()) return;
    if (document.querySelector('dialog[open]')) return; // Escape belongs to the dialog
    setMenu(false);
    document.querySelector('[data-menu-toggle]')?.focus();
  });

  // Widening to desktop makes the drawer a fixed column; keep aria-expanded honest.
  narrow.addEventListener?.('change', (e) => {
    if (!e.matches && menuIsOpen()) setMenu(false);
  });

  /* ------------------------------------------------------------------
   * 2. Table rows: double-click (or Enter) opens the row
   *    tr[data-href]          → navigate
   *    tr[data-dblclick-get]  → htmx GET into data-target (default #instrument-form)
   * ------------------------------------------------------------------ */
  const ROW = 'tr[data-href], tr[data-dblclick-get]';
  // Controls inside a row keep their own behaviour.
  const INTERACTIVE = 'a, button, input, select, textarea, label, summary, [contenteditable]';

  // Only same-scheme web URLs; a stray "javascript:" must never be followed.
  function safeUrl(value) {
    if (!value) return null;
    try {
      const url = new URL(value, window.location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url : null;
    } catch {
      return null;
    }
  }

  function activateRow(row, newTab) {
    const getUrl = safeUrl(row.dataset.dblclickGet);
    if (getUrl) {
      if (hasHtmx()) {
        window.htmx.ajax('GET', getUrl.href, {
          source: row,
          target: row.dataset.target || '#instrument-form',
          swap: 'outerHTML',
        });
      }
      return;
    }
    const href = safeUrl(row.dataset.href);
    if (!href) return;
    if (newTab) window.open(href.href, '_blank', 'noopener');
    else window.location.assign(href.href);
  }

  // A double-click would otherwise select a word in the cell first.
  document.addEventListener('mousedown', (e) => {
    if (e.detail > 1 && closest(e.target, ROW) && !closest(e.target, INTERACTIVE)) {
      e.preventDefault();
    }
  });

  document.addEventListener('dblclick', (e) => {
    const row = closest(e.target, ROW);
    if (!row || closest(e.target, INTERACTIVE)) return;
    activateRow(row, e.ctrlKey || e.metaKey);
  });

  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.defaultPrevented || e.isComposing) return;
    const row = e.target instanceof Element && e.target.matches(ROW) ? e.target : null;
    if (!row) return; // only the focused row itself, not inputs inside it
    e.preventDefault();
    activateRow(row, e.ctrlKey || e.metaKey);
  });

  /* ------------------------------------------------------------------
   * 3. SMS code countdown
   *    The server answers a successful [data-code-button] request with an
   *    element carrying data-countdown="60"; from then on every
   *    [data-code-button] stays disabled, showing "N秒后重新获取".
   * ------------------------------------------------------------------ */
  const CODE_BUTTON = '[data-code-button]';
  const DEFAULT_LABEL = '获取验证码';
  const seenCountdowns = new WeakSet();
  let countdownEnd = 0;   // epoch ms; 0 = idle
  let countdownTimer = 0;

  const countdownActive = () => countdownEnd > Date.now();

  function renderCodeButtons() {
    const remaining = Math.ceil((countdownEnd - Date.now()) / 1000);
    const running = remaining > 0;
    document.querySelectorAll(CODE_BUTTON).forEach((btn) => {
      // Remember the server-rendered label once, before we overwrite it.
      if (btn.dataset.codeLabel === undefined) {
        btn.dataset.codeLabel = btn.textContent.trim() || DEFAULT_LABEL;
      }
      const text = running ? `${remaining}秒后重新获取` : btn.dataset.codeLabel;
      if (btn.textContent !== text) btn.textContent = text;
      if (running) {
        btn.disabled = true;
        btn.dataset.counting = '';
      } else if ('counting' in btn.dataset) {
        // Only re-enable buttons we disabled ourselves.
        btn.disabled = false;
        delete btn.dataset.counting;
      }
    });
    if (!running) stopCountdown();
  }

  function stopCountdown() {
    countdownEnd = 0;
    if (countdownTimer) window.clearInterval(countdownTimer);
    countdownTimer = 0;
  }

  function startCountdown(seconds) {
    // Wall-clock end time, so a throttled background tab still finishes on time.
    countdownEnd = Date.now() + seconds * 1000;
    if (!countdownTimer) countdownTimer = window.setInterval(renderCodeButtons, 250);
    renderCodeButtons();
  }

  // Look anywhere in the page for countdown markers not handled yet.
  function scanCountdowns() {
    document.querySelectorAll('[data-countdown]').forEach((el) => {
      if (seenCountdowns.has(el)) return;
      seenCountdowns.add(el);
      const seconds = Number.parseInt(el.dataset.countdown, 10);
      if (Number.isFinite(seconds) && seconds > 0) startCountdown(Math.min(seconds, 600));
    });
  }

  document.addEventListener('htmx:afterSwap', scanCountdowns);
  document.addEventListener('htmx:load', scanCountdowns);
  // htmx re-enables hx-disabled-elt buttons after the swap; disable them again.
  document.addEventListener('htmx:afterRequest', () => {
    if (countdownActive()) renderCodeButtons();
  });
  // Belt and braces: never send a second code request while counting down.
  document.addEventListener('htmx:beforeRequest', (e) => {
    if (countdownActive() && closest(e.target, CODE_BUTTON)) e.preventDefault();
  });
  scanCountdowns(); // a full-page render may already carry the marker

  /* ------------------------------------------------------------------
   * 4. Dialogs: [data-open-dialog="id"] opens, [data-close-dialog] closes
   * ------------------------------------------------------------------ */
  // An htmx request that fails (expired page, a file too large, a server error, no network)
  // swaps nothing: say so in the page's error bar instead of doing nothing visible.
  const showError = (text) => {
    const bar = document.getElementById('htmx-error');
    if (!bar) { window.alert(text); return; }
    bar.textContent = text;
    bar.hidden = false;
    bar.scrollIntoView({ block: 'nearest' });
  };
  document.addEventListener('htmx:responseError', (e) => {
    const xhr = e.detail.xhr;
    const plain = (xhr.getResponseHeader('Content-Type') || '').startsWith('text/plain');
    showError(plain && xhr.responseText ? xhr.responseText : '操作失败，请刷新页面后重试');
  });
  document.addEventListener('htmx:sendError', () => showError('网络连接失败，请检查网络后重试'));
  document.addEventListener('htmx:beforeRequest', () => {
    const bar = document.getElementById('htmx-error');
    if (bar) bar.hidden = true;
  });

  // A picker's form ([data-close-on-success]) closes its dialog once htmx has its answer;
  // closing on click would cancel the submit htmx is about to send.
  document.addEventListener('htmx:afterRequest', (e) => {
    const form = e.detail?.elt?.closest?.('[data-close-on-success]');
    if (form && e.detail.successful) form.closest('dialog')?.close();
  });

  // A dialog marked data-reset-on-close forgets its last use (chosen file, result message),
  // so reopening it cannot silently repeat an import.
  document.addEventListener('close', (e) => {
    const dialog = e.target;
    if (!(dialog instanceof HTMLDialogElement) || !dialog.hasAttribute('data-reset-on-close')) return;
    dialog.querySelectorAll('form').forEach((f) => f.reset());
    dialog.querySelectorAll('[data-clear-on-close]').forEach((el) => { el.textContent = ''; });
  }, true);

  document.addEventListener('click', (e) => {
    const opener = closest(e.target, '[data-open-dialog]');
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog instanceof HTMLDialogElement) {
        e.preventDefault(); // an opener inside a form must not submit it
        if (!dialog.open) dialog.showModal();
      }
      return;
    }

    const closer = closest(e.target, '[data-close-dialog]');
    if (closer) {
      const dialog = closer.closest('dialog');
      if (dialog?.open) {
        e.preventDefault();
        dialog.close();
      }
      return;
    }

    // A click on the backdrop of a modal picker closes it.
    const target = e.target;
    if (target instanceof HTMLDialogElement && target.open && target.classList.contains('modal')) {
      const r = target.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right &&
                     e.clientY >= r.top && e.clientY <= r.bottom;
      // Keyboard-generated clicks report 0,0; never treat them as backdrop clicks.
      if (!inside && (e.clientX !== 0 || e.clientY !== 0)) target.close();
    }
  });

  /* ------------------------------------------------------------------
   * 5. Select-all: input[type=checkbox][data-check-all="name"]
   * ------------------------------------------------------------------ */
  const MASTER = 'input[type="checkbox"][data-check-all]';

  // Boxes named `name` that share the master's form (incl. form="" owners),
  // else its table, else the whole page.
  function boxesFor(master) {
    const name = master.dataset.checkAll;
    let pool;
    if (master.form) pool = Array.from(master.form.elements);
    else pool = Array.from((master.closest('table') || document).querySelectorAll('input'));
    return pool.filter((el) =>
      el instanceof HTMLInputElement && el.type === 'checkbox' && el.name === name &&
      el !== master && !el.disabled);
  }

  function syncMaster(master) {
    const boxes = boxesFor(master);
    const checked = boxes.filter((b) => b.checked).length;
    master.checked = boxes.length > 0 && checked === boxes.length;
    master.indeterminate = checked > 0 && checked < boxes.length;
  }

  document.addEventListener('change', (e) => {
    const el = e.target;
    if (!(el instanceof HTMLInputElement) || el.type !== 'checkbox') return;
    if (el.matches(MASTER)) {
      boxesFor(el).forEach((b) => { b.checked = el.checked; });
      el.indeterminate = false;
      return;
    }
    // A single box changed: reflect it on any master that governs it.
    if (!el.name) return;
    document.querySelectorAll(MASTER).forEach((master) => {
      if (master.dataset.checkAll === el.name) syncMaster(master);
    });
  });

  // New rows (paging, search) arrive unchecked; keep masters in step.
  document.addEventListener('htmx:afterSettle', () => {
    document.querySelectorAll(MASTER).forEach(syncMaster);
  });
})();

/* ------------------------------------------------------------------
 * 7. Pickers: 已选 N 项 counts the ticks of every page (hidden inputs carry
 *    the other pages' ticks, the boxes this page's).
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  function recount(counter) {
    const form = counter.closest('form');
    if (!form) return;
    const name = counter.dataset.pickedCount;
    const n = Array.from(form.elements).filter((el) =>
      el instanceof HTMLInputElement && el.name === name &&
      (el.type === 'hidden' || (el.type === 'checkbox' && el.checked))).length;
    counter.textContent = '已选 ' + n + ' 项';
  }
  document.addEventListener('change', (e) => {
    const form = e.target instanceof Element ? e.target.closest('form') : null;
    form?.querySelectorAll('[data-picked-count]').forEach(recount);
  });
})();

/* ------------------------------------------------------------------
 * 8. Polling ([data-poll]): no request while the page is hidden (a tab in the
 *    background, a locked phone); the next tick after it shows again refreshes.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('htmx:beforeRequest', (e) => {
    const el = e.target;
    if (document.hidden && el instanceof Element && el.hasAttribute('data-poll')) e.preventDefault();
  });
})();

/* ------------------------------------------------------------------
 * 9. [data-downloads="event"]: a download link that changes what a list shows
 *    (已下载) triggers `event` on <body> once the download has started.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('click', (e) => {
    const link = e.target instanceof Element ? e.target.closest('a[data-downloads]') : null;
    if (!link || !window.htmx) return;
    const name = link.dataset.downloads;
    setTimeout(() => window.htmx.trigger(document.body, name), 1500);
  });
})();

/* ------------------------------------------------------------------
 * 10. [data-closes-dialog="id"] in swapped-in content: the server says the dialog's work
 *     is done (an import that succeeded), so the dialog closes; the focus goes to
 *     [data-then-focus] (the page's new message), as the control that opened the
 *     dialog may have been swapped away.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('htmx:load', (e) => {
    const root = e.detail?.elt;
    if (!(root instanceof Element)) return;
    const markers = root.matches('[data-closes-dialog]')
      ? [root] : Array.from(root.querySelectorAll('[data-closes-dialog]'));
    markers.forEach((marker) => {
      const dialog = document.getElementById(marker.dataset.closesDialog);
      const then = marker.dataset.thenFocus;
      if (dialog instanceof HTMLDialogElement && dialog.open) dialog.close();
      const target = then ? document.querySelector(then) : null;
      if (target instanceof HTMLElement) {
        if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
        target.focus();
      }
    });
  });
})();

/* ------------------------------------------------------------------
 * 11. 预约送检 on a phone (#13 item 4): a card's 修改 loads its row into the
 *     instrument fields, far above the card; bring them into view.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  const narrow = window.matchMedia('(max-width: 899.98px)');
  // The fields alone come back since #11 (#instrument-fields); the whole section still
  // does after a picker or an import.
  const SWAPPED = ['instrument-section', 'instrument-fields'];
  document.addEventListener('htmx:afterSettle', (e) => {
    if (!narrow.matches || !SWAPPED.includes(e.detail?.target?.id)) return;
    const entry = document.querySelector('#instrument-section .entry.shown');
    if (entry) entry.scrollIntoView({ block: 'start' });
  });
})();

/* ------------------------------------------------------------------
 * 12. A plain form's submit button (提交 of 预约送检, the admin forms) is busy while
 *     the browser sends the form: disabled, so a second click sends nothing twice.
 *     Disabled after the event, as a disabled submitter leaves its value out; enabled
 *     again when the page comes back from the back-forward cache.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('submit', (e) => {
    const form = e.target;
    const button = e.submitter;
    if (e.defaultPrevented || !(form instanceof HTMLFormElement)) return;
    if (!(button instanceof HTMLButtonElement) || form.hasAttribute('hx-post')) return;
    setTimeout(() => {
      button.disabled = true;
      button.setAttribute('aria-busy', 'true');
    }, 0);
  });
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    document.querySelectorAll('button[aria-busy="true"]').forEach((b) => {
      b.disabled = false;
      b.removeAttribute('aria-busy');
    });
  });
})();

/* ------------------------------------------------------------------
 * 13. [data-print]: 打印 on the 送检单 and 器具标签 pages (#12 item 2) opens the
 *     browser's print dialog; app.css lays the sheet out for A4.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('click', (e) => {
    const button = e.target instanceof Element ? e.target.closest('[data-print]') : null;
    if (button) window.print();
  });
})();

/* ------------------------------------------------------------------
 * 14. 预约送检's 器具列表 (#11): a change answers with the fields and the rows it touched,
 *     not the whole list, so the row being edited (the fields' item_id) is marked here
 *     after each swap: the one loaded by 修改, none after 【清空】 or a save.
 * ------------------------------------------------------------------ */
(function () {
  'use strict';
  document.addEventListener('htmx:afterSettle', () => {
    const table = document.getElementById('instrument-table');
    if (!table) return;
    const editing = document.querySelector('#instrument-fields input[name="item_id"]')?.value;
    table.querySelectorAll('tbody > tr[id^="item-"]').forEach((row) => {
      row.classList.toggle('selected', Boolean(editing) && row.id === `item-${editing}`);
    });
  });
})();
