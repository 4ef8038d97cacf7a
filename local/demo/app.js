"use strict";
// A partner web page on the Offer State Gateway, as a partner's web team would start from it.
// Plain JavaScript, no build step. The token lives in memory only (never localStorage).

const PAGE_SIZE = 8;
const SAVED_PAGE_SIZE = 5;
const state = { config: null, token: null, catalogue: [], page: 0, savedPage: 0, keys: new Map() };
// Answers can arrive out of order (quick clicks on "Next"): only the newest request of a list
// may draw it, or a late answer for an earlier page would replace the page asked last.
const newest = { catalogue: 0, saved: 0 };
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(message, correlationId, code) {
    super(message);
    this.correlationId = correlationId;
    this.code = code;
  }
}

async function api(method, path, { body, idempotencyKey } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(state.config.api + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The API could not be reached: the browser blocked the call, or it is down.", null);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const message = data?.error?.message ?? data?.message ?? `HTTP ${response.status}`;
    const correlationId = data?.correlationId ?? response.headers.get("X-Correlation-Id");
    throw new ApiError(message, correlationId, data?.error?.code);
  }
  return data;
}

function showError(error) {
  const box = $("error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  const id = error.correlationId ? ` (correlation id ${error.correlationId})` : "";
  box.textContent = `${error.message}${id}`;
  box.hidden = false;
}

function showStatus(text) {
  const box = $("status");
  box.textContent = text ?? "";
  box.hidden = !text;
}

async function guarded(action) {
  try { showError(null); showStatus(null); await action(); } catch (error) { showError(error); }
}

// ---------------------------------------------------------------- sign in (local dev issuer)

async function signIn() {
  const collector = $("collector").value.trim();
  const answer = await fetch(`${state.config.issuer}/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ collectorNumber: collector }),
  });
  const data = await answer.json();
  if (!answer.ok) throw new ApiError(data.error || "Sign-in failed", null);
  state.token = data.access_token;
  $("signed-in").textContent = `signed in as collector *******${collector.slice(-4)}`;
  $("main").hidden = false;
  await Promise.all([showCatalogue(), refreshCount()]);
}

// ---------------------------------------------------------------- all offers, labelled

function labels(offer) {
  const parts = [];
  if (offer.saved) parts.push('<span class="label saved" data-testid="label-saved">Saved</span>');
  if (offer.optedIn) parts.push('<span class="label opted-in" data-testid="label-opted-in">Opted in</span>');
  return parts.join("") || '<span class="label none">-</span>';
}

async function showCatalogue() {
  const ids = state.catalogue.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  const pages = Math.ceil(state.catalogue.length / PAGE_SIZE);
  $("page-number").textContent = `page ${state.page + 1} of ${pages}`;
  $("prev-page").disabled = state.page === 0;
  $("next-page").disabled = state.page >= pages - 1;
  // One call labels the whole page, in the order asked.
  const asked = ++newest.catalogue;
  const data = await api("GET", `/v1/offers/states?offerId=${ids.join(",")}`);
  if (asked !== newest.catalogue) return;
  $("offers").innerHTML = data.offers.map((offer) => `
    <tr data-testid="offer-row" data-offer-id="${offer.offerId}">
      <td class="offer">${offer.offerId}</td>
      <td>${labels(offer)}</td>
      <td>
        <button data-testid="save" data-name="SAVE" data-value="SAVED">Save</button>
        <button data-testid="unsave" data-name="SAVE" data-value="UNSAVED">Unsave</button>
        <button data-testid="opt-in" data-name="OPT_IN" data-value="OPTED_IN">Opt in</button>
      </td>
    </tr>`).join("");
}

// ---------------------------------------------------------------- changes, idempotent

async function change(offerId, name, value) {
  // One key per intended change: a double click sends the same key, so AIR MILES sees one PUT.
  const intent = `${offerId}:${name}:${value}`;
  if (!state.keys.has(intent)) state.keys.set(intent, crypto.randomUUID());
  const key = state.keys.get(intent);
  const body = { states: [{ name, value }] };
  for (let attempt = 0; ; attempt += 1) {
    try {
      await api("PUT", `/v1/offers/${offerId}/states`, { body, idempotencyKey: key });
      break;
    } catch (error) {
      if (error.code === "OUTCOME_UNKNOWN") {
        await checkApplied(offerId, name, value, intent, error);
        break;
      }
      // The first click's request is still running: wait for its answer, then replay it.
      const inFlight = error.code === "IDEMPOTENCY_CONFLICT" && /in flight/.test(error.message);
      if (!inFlight || attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  // Another change to the same offer later is a new intent.
  for (const other of [...state.keys.keys()]) {
    if (other.startsWith(`${offerId}:`) && other !== intent) state.keys.delete(other);
  }
  await Promise.all([showCatalogue(), refreshCount(), $("saved").hidden ? null : showSaved()]);
}

// The change was sent and its answer lost: AIR MILES may or may not have applied it. Its key
// keeps that answer (a repeat would only get it again), so read the offer's states: applied,
// done; not applied, the next click sends it again with a new key.
async function checkApplied(offerId, name, value, intent, unknown) {
  showStatus("The answer to this change was lost on the way: checking whether it was applied…");
  const data = await api("GET", `/v1/offers/states?offerId=${offerId}`);
  const applied = data.offers.some((offer) => offer.offerId === offerId
    && offer.states.some((s) => s.name === name && s.value === value));
  if (!applied) {
    state.keys.delete(intent);
    showStatus(null);
    throw new ApiError("The change was not applied (its answer was lost on the way): click again to send it.",
      unknown.correlationId, unknown.code);
  }
  showStatus("Checked: the change was applied (its answer had been lost on the way).");
}

// ---------------------------------------------------------------- my saved offers

async function refreshCount() {
  const data = await api("GET", "/v1/offers/states/count");
  $("saved-count").textContent = String(data.count);
}

async function showSaved() {
  const asked = ++newest.saved;
  const data = await api("GET", `/v1/offers/states/find?pageSize=${SAVED_PAGE_SIZE}&pageNumber=${state.savedPage}`);
  if (asked !== newest.saved) return;
  $("saved-list").innerHTML = data.offers.map((offer) => `
    <tr data-testid="saved-row" data-offer-id="${offer.offerId}">
      <td class="offer">${offer.offerId}</td>
      <td>${labels(offer)}</td>
      <td>${offer.states.map((s) => s.updatedAt).sort().pop() ?? ""}</td>
    </tr>`).join("");
  const total = data.totalCount ?? data.offers.length;
  const pages = Math.max(1, Math.ceil(total / SAVED_PAGE_SIZE));
  $("saved-page-number").textContent = `page ${state.savedPage + 1} of ${pages}`;
  $("saved-prev").disabled = state.savedPage === 0;
  $("saved-next").disabled = state.savedPage >= pages - 1;
}

function tab(which) {
  $("catalogue").hidden = which !== "catalogue";
  $("saved").hidden = which !== "saved";
  $("show-catalogue").classList.toggle("active", which === "catalogue");
  $("show-saved").classList.toggle("active", which === "saved");
}

// ---------------------------------------------------------------- wiring

async function start() {
  state.config = await (await fetch("/config.json")).json();
  state.catalogue = (await (await fetch("/catalogue.json")).json()).offerIds;
  $("sign-in").addEventListener("click", () => guarded(signIn));
  $("next-page").addEventListener("click", () => guarded(async () => { state.page += 1; await showCatalogue(); }));
  $("prev-page").addEventListener("click", () => guarded(async () => { state.page -= 1; await showCatalogue(); }));
  $("saved-next").addEventListener("click", () => guarded(async () => { state.savedPage += 1; await showSaved(); }));
  $("saved-prev").addEventListener("click", () => guarded(async () => { state.savedPage -= 1; await showSaved(); }));
  $("show-catalogue").addEventListener("click", () => guarded(async () => { tab("catalogue"); await showCatalogue(); }));
  $("show-saved").addEventListener("click", () => guarded(async () => { tab("saved"); await showSaved(); }));
  $("offers").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-name]");
    if (!button) return;
    const offerId = button.closest("tr").dataset.offerId;
    guarded(() => change(offerId, button.dataset.name, button.dataset.value));
  });
  document.body.dataset.ready = "true";
}

start().catch(showError);
