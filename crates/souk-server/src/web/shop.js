// The storefront: search with suggestions, facets, sorting and paging; product pages with
// similar items and what is bought together; home rails with their reasons; a shopper
// switcher and an English / Chinese switch. Routes live in the URL hash:
//   #/                      home rails
//   #/search?q=…&brand=…    results (every filter is a parameter, so the back button works)
//   #/item/ID               a product
// Every action a shopper takes (open, add to cart, buy) is posted to /v1/events, so the
// next recommendations change.

import {
  api, query, h, fill, t, lang, setLang, formatPrice, formatNumber, picture, keyForm, onKeyNeeded,
} from "/web/common.js";

const PAGE = 24;
const USER = "souk.user";
const main = document.getElementById("main");
const state = { user: localStorage.getItem(USER) || "", shoppers: [], version: 0, stated: {} };

// ---------------------------------------------------------------- shoppers and events

function newVisitor() {
  const id = `visitor-${Math.random().toString(36).slice(2, 10)}`;
  setUser(id);
  return id;
}

function setUser(id) {
  state.user = id;
  localStorage.setItem(USER, id);
}

function isVisitor() {
  return state.user.startsWith("visitor-");
}

/** Post one event of the current shopper. */
async function track(type, item, extra = {}) {
  const event = { type, user: state.user, item, timestamp: Date.now(), ...extra };
  await api("/v1/events", { method: "POST", body: [event] });
}

async function loadShoppers() {
  try {
    const answer = await api(`/v1/users${query({ limit: 20 })}`);
    state.shoppers = answer.users;
  } catch (_) {
    state.shoppers = []; // a key without the admin scope: only the new visitor
  }
  if (!state.user) {
    if (state.shoppers.length) setUser(state.shoppers[0].id);
    else newVisitor();
  }
  renderShopperSelect();
}

function renderShopperSelect() {
  const select = document.getElementById("shopper");
  const options = [h("option", { value: "__new" }, t("new_visitor"))];
  if (isVisitor()) options.push(h("option", { value: state.user }, `${t("new_visitor")} · ${state.user.slice(8)}`));
  else if (!state.shoppers.some((s) => s.id === state.user)) options.push(h("option", { value: state.user }, state.user));
  for (const s of state.shoppers) {
    const cats = s.top_categories.slice(0, 2).map((c) => c.category).join(", ");
    options.push(h("option", { value: s.id }, `${s.id} · ${cats ? t("top_categories", cats) : `${s.events} ${t("events")}`}`));
  }
  fill(select, options);
  select.value = state.user;
}

// ---------------------------------------------------------------- routing

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?");
  const params = new URLSearchParams(search || "");
  if (path.startsWith("/item/")) return { view: "item", id: decodeURIComponent(path.slice(6)), params };
  if (path === "/search") return { view: "search", params };
  return { view: "home", params };
}

function go(path, params) {
  const target = `#${path}${params ? query(params) : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

async function render() {
  const r = route();
  document.getElementById("q").value = r.view === "search" ? r.params.get("q") || "" : "";
  hideSuggestions();
  const token = ++state.version;
  fill(main, h("p", { class: "loading" }, t("loading")));
  try {
    const view = r.view === "item" ? await itemPage(r.id, r.params) : r.view === "search" ? await searchPage(r.params) : await homePage();
    if (token === state.version) fill(main, view);
  } catch (error) {
    if (token === state.version) fill(main, h("p", { class: "error", id: "page-error" }, t("error", error.message)));
  }
  document.body.dataset.view = r.view;
  document.body.dataset.ready = String(token);
}

// ---------------------------------------------------------------- cards and rails

function titleOf(item) {
  if (lang() === "zh" && item.translations && item.translations.zh) return item.translations.zh.title;
  return item.title || item.id;
}

/** Open an item; a click from a logged page is posted with its request id and position. */
function openItem(id, origin) {
  if (origin && origin.request_id) {
    track("click", id, { request_id: origin.request_id, position: origin.position }).catch(() => {});
  }
  go(`/item/${encodeURIComponent(id)}`);
}

/** A relation of the item graph in words: `brand`, `category`, or a knowledge-graph
 * relation (`film.film.directed_by`) by its last part ("director"). */
function relationLabel(relation) {
  const last = relation.split(".").pop();
  const key = `rel_${last}`;
  const text = t(key);
  return text === key ? last.replace(/_/g, " ") : text;
}

/** A reason in plain words; `cite` names the history item it cites, whatever the source. */
function reasonText(reason, cite = false) {
  if (!reason) return "";
  if ((cite || reason.source === "itemknn" || reason.source === "session") && reason.because_title) {
    return t("r_itemknn", reason.because_title, t(`ev_${reason.because_event || "view"}`));
  }
  if (reason.source === "graph" && reason.relation) {
    const label = relationLabel(reason.relation);
    return reason.because_title ? t("r_graph", label, reason.because_title) : t("r_graph_plain", label);
  }
  if (reason.source === "friends" && reason.friend) {
    return t("r_friends", reason.friend, t(`ev_${reason.friend_event || "view"}`));
  }
  // `matched` holds "name=value" pairs: the profile behind a new shopper's pick.
  const values = (reason.matched || []).map((m) => m.slice(m.indexOf("=") + 1));
  if (reason.source === "demographic") {
    return values.length ? t("r_demographic", values.join(", ")) : t("r_demographic_plain");
  }
  if (reason.source === "preferences" && values.length) {
    return t("r_preferences", values.join(", "));
  }
  const key = `r_${reason.source}`;
  const text = t(key);
  return text === key ? t("r_other", reason.source) : text;
}

function whyPanel(item) {
  const rows = item.reasons.map((r) =>
    h("tr", {}, h("td", {}, reasonText(r)), h("td", {}, r.source), h("td", { class: "num" }, r.rank), h("td", { class: "num" }, r.score.toFixed(3))),
  );
  const ranker = item.ranker
    ? h("p", {}, t("ranker_line", item.ranker.score.toFixed(3), item.ranker.blend_rank))
    : null;
  const contributions = item.ranker && item.ranker.contributions && item.ranker.contributions.length
    ? h("div", {}, h("h5", {}, t("top_features")),
      h("ul", { class: "contrib" }, item.ranker.contributions.slice(0, 5).map(([name, amount]) =>
        h("li", {}, h("span", {}, name), h("span", { class: amount >= 0 ? "up" : "down" }, `${amount >= 0 ? "+" : ""}${amount.toFixed(3)}`)))))
    : null;
  return h("div", { class: "why-panel", role: "region" },
    h("h4", {}, `${t("why_title")}: ${item.title || item.id}`),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, t("stage_source")), h("th", {}, t("stage_rank")), h("th", {}, t("stage_score")))), h("tbody", {}, rows)),
    ranker, contributions);
}

/** The reason a card states: the most specific one (naming an item of the history). */
function mainReason(item) {
  return item.reasons.find((r) => r.because_title) || item.reasons[0];
}

/** A product card; `origin` carries the page's request id and the position for click
 *  logging; with `why`, the card states its reason and its "why?" opens `why(item)`. */
function card(item, origin, { why = null } = {}) {
  const title = item.title || titleOf(item);
  const body = h("div", { class: "card-body" },
    h("div", { class: "card-title" }, title),
    h("div", { class: "card-meta" }, item.brand ? h("span", {}, item.brand) : null, item.price !== undefined && item.price !== null ? h("b", {}, formatPrice(item.price, item.currency)) : null));
  const el = h("article", { class: "card", dataset: { item: item.id } },
    h("a", { href: `#/item/${encodeURIComponent(item.id)}`, class: "card-link", onclick: (e) => { e.preventDefault(); openItem(item.id, origin); } },
      picture(item), body));
  if (why && item.reasons && item.reasons.length) {
    el.append(h("div", { class: "reason" }, h("span", {}, reasonText(mainReason(item), true)),
      h("button", { type: "button", class: "why", "aria-expanded": "false", onclick: (e) => why(item, e.currentTarget) }, t("why"))));
  }
  return el;
}

/** A row of cards; with `reasons`, each states why, and "why?" opens the stages below the row. */
function rail(id, title, items, page, { reasons = false } = {}) {
  if (!items.length) return null;
  const explain = h("div", { class: "why-slot" });
  const why = (item, button) => {
    const open = explain.dataset.item === item.id;
    explain.replaceChildren();
    delete explain.dataset.item;
    explain.parentElement.querySelectorAll(".why").forEach((b) => b.setAttribute("aria-expanded", "false"));
    if (!open) {
      explain.dataset.item = item.id;
      explain.append(whyPanel(item));
      button.setAttribute("aria-expanded", "true");
    }
  };
  return h("section", { class: "rail", id },
    h("h2", {}, title),
    h("div", { class: "rail-items" }, items.map((item, i) => card(item, page && { request_id: page.request_id, position: i + 1 }, { why: reasons ? why : null }))),
    explain);
}

let routes = null;
/** Whether this server answers `path` (from its OpenAPI document, read once): optional
 *  surfaces are hidden, not requested, on a server without them. */
async function hasRoute(path) {
  if (!routes) routes = fetch("/openapi.json").then((r) => (r.ok ? r.json() : { paths: {} })).then((doc) => doc.paths || {}, () => ({}));
  return path in (await routes);
}

function recommendations(n) {
  return api(`/v1/users/${encodeURIComponent(state.user)}/recommendations${query({ n, lang: lang(), explain: true })}`);
}

// ---------------------------------------------------------------- home

async function homePage() {
  const shopper = state.shoppers.find((s) => s.id === state.user);
  const topCategory = shopper && shopper.top_categories[0] ? shopper.top_categories[0].category : null;
  const [forYou, trending, trendingIn, newest] = await Promise.all([
    recommendations(30),
    api(`/v1/trending${query({ n: 12, lang: lang() })}`),
    topCategory ? api(`/v1/trending${query({ n: 12, lang: lang(), category: topCategory })}`).catch(() => null) : null,
    api(`/v1/search${query({ q: "", n: 12, sort: "newest", lang: lang(), facets: false })}`).catch(() => null),
  ]);
  const sections = [];
  if (isVisitor()) {
    sections.push(h("p", { class: "note", id: "visitor-note" }, t("visitor_note")));
    const panel = await onboarding();
    if (panel) sections.push(panel);
  }
  sections.push(rail("for-you", t("for_you"), forYou.items.slice(0, 12), forYou, { reasons: true }));
  // "Because you viewed X": the history item most of the page's reasons cite.
  const cited = new Map();
  forYou.items.forEach((item) => {
    const r = item.reasons.find((x) => x.because_title);
    if (r) cited.set(r.because, [...(cited.get(r.because) || []), item]);
  });
  const [because, items] = [...cited.entries()].sort((a, b) => b[1].length - a[1].length)[0] || [];
  if (because && items.length >= 2) {
    const title = items[0].reasons.find((x) => x.because === because).because_title;
    sections.push(rail("because", t("because_viewed", title), items.slice(0, 8), forYou, { reasons: true }));
  }
  sections.push(rail("trending", t("trending"), trending.items, trending));
  if (trendingIn) sections.push(rail("trending-category", t("trending_in", topCategory), trendingIn.items, trendingIn));
  if (newest) sections.push(rail("new-arrivals", t("new_arrivals"), newest.items, newest));
  return h("div", { class: "home" }, sections);
}

/** A new visitor's onboarding: the catalog's top categories to pick from; the choice is
 *  stored as the visitor's stated preferences, which shape their first pages. */
async function onboarding() {
  const answer = await api(`/v1/search${query({ q: "", n: 1, lang: lang() })}`).catch(() => null);
  const roots = [...new Set(((answer && answer.facets && answer.facets.category) || []).map((c) => c.value.split(" > ")[0]))].slice(0, 12);
  if (!roots.length) return null;
  // What this visitor stated (kept in the page: a visitor without a record has none).
  const chosen = new Set(state.stated[state.user] || []);
  const chips = roots.map((root) => h("button", {
    type: "button",
    class: `chip${chosen.has(root) ? " selected" : ""}`,
    dataset: { onboard: root },
    onclick: (e) => {
      if (chosen.has(root)) chosen.delete(root); else chosen.add(root);
      e.currentTarget.classList.toggle("selected", chosen.has(root));
    },
  }, root));
  const status = h("span", { class: "muted", id: "onboard-status" });
  const save = h("button", {
    type: "button",
    id: "onboard-save",
    onclick: async () => {
      try {
        await api(`/v1/users/${encodeURIComponent(state.user)}`, { method: "PUT", body: { preferences: { categories: [...chosen] } } });
        state.stated[state.user] = [...chosen];
        render();
      } catch (error) {
        status.textContent = error.message || String(error);
      }
    },
  }, t("onboard_save"));
  return h("div", { class: "onboard", id: "onboard" }, h("p", {}, t("onboard_title")), h("div", {}, chips), save, status);
}

// ---------------------------------------------------------------- search

const FILTERS = ["category", "brand", "min_price", "max_price"];

function searchParams(params) {
  const out = { q: params.get("q") || "", n: PAGE, lang: lang(), user: isVisitor() ? undefined : state.user };
  for (const [k, v] of params.entries()) if (FILTERS.includes(k) || k.startsWith("attr.")) out[k] = params.getAll(k);
  const page = Math.max(1, Number(params.get("page") || 1));
  out.offset = (page - 1) * PAGE;
  if (params.get("sort")) out.sort = params.get("sort");
  return out;
}

/** The current search's parameters with `changes` applied (`null` removes), back to page 1. */
function withParams(params, changes) {
  const next = new URLSearchParams(params.toString());
  for (const [k, v] of Object.entries(changes)) {
    next.delete(k);
    if (Array.isArray(v)) v.forEach((x) => next.append(k, x));
    else if (v !== null && v !== undefined && v !== "") next.set(k, v);
  }
  if (!("page" in changes)) next.delete("page");
  return `#/search?${next.toString()}`;
}

function facetLink(label, count, href, selected, facet, value) {
  return h("li", {}, h("a", { href, class: selected ? "facet selected" : "facet", dataset: { facet, value }, "aria-pressed": selected ? "true" : "false" },
    h("span", { class: "check" }, selected ? "✓" : ""), h("span", { class: "label" }, label), count !== null ? h("span", { class: "count" }, formatNumber(count)) : null));
}

function facetsPanel(answer, params) {
  const groups = [];
  const category = params.get("category");
  const catItems = [];
  if (category) {
    const levels = category.split(" > ");
    catItems.push(h("li", {}, h("a", { href: withParams(params, { category: null }), class: "facet clear", dataset: { clear: "category" } }, `× ${t("clear")}`)));
    levels.forEach((level, i) => {
      const path = levels.slice(0, i + 1).join(" > ");
      catItems.push(facetLink(level, null, withParams(params, { category: path }), i === levels.length - 1, "category", path));
    });
  }
  for (const c of answer.facets.category) {
    const path = c.value.includes(" > ") || !category ? c.value : `${category} > ${c.value}`;
    if (path === category) continue;
    const label = path.split(" > ").pop();
    catItems.push(facetLink(label, c.count, withParams(params, { category: path }), false, "category", path));
  }
  if (catItems.length) groups.push(["category", t("category"), catItems]);

  const brands = params.getAll("brand");
  const brandItems = answer.facets.brand.map((b) => {
    const on = brands.includes(b.value);
    const next = on ? brands.filter((x) => x !== b.value) : [...brands, b.value];
    return facetLink(b.value, b.count, withParams(params, { brand: next }), on, "brand", b.value);
  });
  if (brands.length) brandItems.unshift(h("li", {}, h("a", { href: withParams(params, { brand: null }), class: "facet clear", dataset: { clear: "brand" } }, `× ${t("clear")}`)));
  if (brandItems.length) groups.push(["brand", t("brand"), brandItems]);

  const min = params.get("min_price");
  const max = params.get("max_price");
  const priceItems = answer.facets.price.filter((p) => p.count > 0).map((p) => {
    const on = String(p.min) === (min || "") && String(p.max ?? "") === (max || "");
    const label = p.max === null || p.max === undefined ? `${formatPrice(p.min)}+` : `${formatPrice(p.min)} – ${formatPrice(p.max)}`;
    const href = on ? withParams(params, { min_price: null, max_price: null }) : withParams(params, { min_price: p.min, max_price: p.max ?? null });
    return facetLink(label, p.count, href, on, "price", `${p.min}-${p.max ?? ""}`);
  });
  if (min || max) priceItems.unshift(h("li", {}, h("a", { href: withParams(params, { min_price: null, max_price: null }), class: "facet clear", dataset: { clear: "price" } }, `× ${t("clear")}`)));
  if (priceItems.length) groups.push(["price", t("price"), priceItems]);

  for (const [name, values] of Object.entries(answer.facets.attributes)) {
    const key = `attr.${name}`;
    const chosen = params.getAll(key);
    const items = values.map((v) => {
      const on = chosen.includes(v.value);
      const next = on ? chosen.filter((x) => x !== v.value) : [...chosen, v.value];
      return facetLink(v.value, v.count, withParams(params, { [key]: next }), on, key, v.value);
    });
    if (chosen.length) items.unshift(h("li", {}, h("a", { href: withParams(params, { [key]: null }), class: "facet clear", dataset: { clear: key } }, `× ${t("clear")}`)));
    if (items.length) groups.push([key, name, items]);
  }
  const anyFilter = [...params.keys()].some((k) => FILTERS.includes(k) || k.startsWith("attr."));
  return h("aside", { class: "facets", id: "facets" },
    anyFilter ? h("a", { href: `#/search${query({ q: params.get("q") || "", sort: params.get("sort") })}`, class: "clear-all", id: "clear-all" }, t("clear_all")) : null,
    groups.map(([id, title, items]) => h("section", { class: "facet-group", dataset: { group: id } }, h("h3", {}, title), h("ul", {}, items))));
}

function sortSelect(params) {
  const select = h("select", { id: "sort", "aria-label": t("sort"), onchange: () => (location.hash = withParams(params, { sort: select.value === "relevance" ? null : select.value })) },
    ["relevance", "price_asc", "price_desc", "newest", "popularity"].map((s) => h("option", { value: s }, t(`sort_${s}`))));
  select.value = params.get("sort") || "relevance";
  return h("label", { class: "sort" }, `${t("sort")} `, select);
}

function pager(answer, params) {
  const page = Math.max(1, Number(params.get("page") || 1));
  const pages = Math.max(1, Math.ceil(answer.total / PAGE));
  if (pages <= 1) return null;
  return h("nav", { class: "pager", id: "pager" },
    page > 1 ? h("a", { href: withParams(params, { page: page - 1 }), id: "prev-page" }, `← ${t("previous")}`) : h("span", {}),
    h("span", { id: "page-label", dataset: { page } }, t("page", page, pages)),
    page < pages ? h("a", { href: withParams(params, { page: page + 1 }), id: "next-page" }, `${t("next")} →`) : h("span", {}));
}

async function zeroResults(q) {
  const [trending, popular] = await Promise.all([
    api(`/v1/trending${query({ n: 12, lang: lang() })}`),
    api(`/v1/suggest${query({ q: "", n: 8, lang: lang() })}`).catch(() => ({ suggestions: [] })),
  ]);
  return h("div", { class: "zero", id: "zero-results" },
    h("h2", {}, t("no_results", q)),
    h("p", {}, t("no_results_help")),
    popular.suggestions.length ? h("p", { class: "popular" }, `${t("popular_searches")}: `,
      popular.suggestions.map((s) => h("a", { href: `#/search${query({ q: s.text })}`, class: "chip" }, s.text))) : null,
    rail("zero-trending", t("trending"), trending.items, trending));
}

async function searchPage(params) {
  const q = params.get("q") || "";
  const answer = await api(`/v1/search${query(searchParams(params))}`);
  const anyFilter = [...params.keys()].some((k) => FILTERS.includes(k) || k.startsWith("attr."));
  if (answer.total === 0 && !anyFilter) return zeroResults(q);
  const correction = answer.did_you_mean || answer.corrected || answer.correction;
  const notes = [
    typeof correction === "string" && correction !== q
      ? h("p", { class: "did-you-mean", id: "did-you-mean" }, `${t("did_you_mean")}: `, h("a", { href: `#/search${query({ q: correction })}` }, correction), "?")
      : null,
    answer.fuzzy && answer.fuzzy.length ? h("p", { class: "note" }, t("approximate", answer.fuzzy.join(", "))) : null,
    answer.relaxed ? h("p", { class: "note" }, t("relaxed")) : null,
  ];
  const offset = Math.max(0, (Number(params.get("page") || 1) - 1) * PAGE);
  const grid = answer.items.length
    ? h("div", { class: "grid", id: "results" }, answer.items.map((item, i) => card(item, { request_id: answer.request_id, position: offset + i + 1 })))
    : h("p", { class: "note", id: "results-empty" }, t("no_results", q));
  return h("div", { class: "search-page" },
    facetsPanel(answer, params),
    h("section", { class: "results" },
      h("div", { class: "results-head" },
        h("h1", { id: "result-count", dataset: { total: answer.total, mode: answer.mode } }, q ? t("results_for", formatNumber(answer.total), q) : t("results", formatNumber(answer.total))),
        sortSelect(params)),
      notes, grid, pager(answer, params)));
}

// ---------------------------------------------------------------- product page

// What the item's review texts say (scored by the sentiment head at the last training).
function reviewsSay(sentiment) {
  if (!sentiment || !sentiment.reviews) return null;
  const score = sentiment.score;
  const verdict = score > 0.3 ? "reviews_positive" : score < -0.3 ? "reviews_negative" : "reviews_mixed";
  return h("p", { class: "reviews-say", id: "reviews-say", title: score.toFixed(2), dataset: { score: String(score) } },
    t("reviews_say", sentiment.reviews, t(verdict)));
}

async function itemPage(id, params) {
  const item = await api(`/v1/items/${encodeURIComponent(id)}`);
  // The view first, so the recommendations below already know it.
  await track("view", id).catch(() => {});
  const [similar, together] = await Promise.all([
    api(`/v1/items/${encodeURIComponent(id)}/similar${query({ n: 8, lang: lang() })}`).catch(() => null),
    (await hasRoute("/v1/items/{id}/bought-together"))
      ? api(`/v1/items/${encodeURIComponent(id)}/bought-together${query({ n: 6, lang: lang() })}`).catch(() => null)
      : null,
  ]);
  const forYouSlot = h("div", { id: "now-for-you-slot" });
  const status = h("p", { class: "status", id: "cart-status", role: "status" });
  const refresh = async (message) => {
    const page = await recommendations(8);
    const section = rail("now-for-you", t("now_for_you"), page.items, page, { reasons: true });
    if (section) section.dataset.version = String(Number(forYouSlot.dataset.version || 0) + 1);
    forYouSlot.dataset.version = section ? section.dataset.version : "0";
    fill(forYouSlot, section);
    if (message) status.textContent = message;
  };
  const act = (type, message) => async () => {
    try {
      await track(type, id, type === "purchase" ? { quantity: 1, price: item.price } : {});
      await refresh(message);
    } catch (error) {
      status.textContent = t("error", error.message);
    }
  };
  const title = titleOf(item);
  const description = lang() === "zh" && item.translations && item.translations.zh && item.translations.zh.description
    ? item.translations.zh.description : item.description;
  const path = item.category || [];
  const crumbs = path.map((level, i) => h("a", { href: `#/search${query({ q: "", category: path.slice(0, i + 1).join(" > ") })}` }, level));
  const attributes = Object.entries(item.attributes || {});
  const view = h("div", { class: "product", id: "product", dataset: { item: id } },
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, t("home")), crumbs.map((c) => [" › ", c])),
    h("div", { class: "product-main" },
      picture({ ...item, title }, "hero"),
      h("div", { class: "product-info" },
        h("h1", { id: "product-title" }, title),
        item.brand ? h("p", { class: "product-brand" }, item.brand) : null,
        h("p", { class: "product-price" }, formatPrice(item.price, item.currency)),
        item.available === false ? h("p", { class: "note" }, t("unavailable")) : null,
        reviewsSay(item.review_sentiment),
        h("div", { class: "buy" },
          h("button", { type: "button", id: "add-to-cart", class: "primary", onclick: act("add_to_cart", t("added")) }, t("add_to_cart")),
          h("button", { type: "button", id: "buy-now", onclick: act("purchase", t("bought")) }, t("buy_now"))),
        status,
        description ? [h("h3", {}, t("description")), h("p", {}, description)] : null,
        attributes.length ? [h("h3", {}, t("attributes")), h("dl", { class: "attributes" }, attributes.map(([k, v]) => [h("dt", {}, k), h("dd", {}, Array.isArray(v) ? v.join(", ") : String(v))]))] : null)),
    together && together.items ? rail("bought-together", t("bought_together"), together.items, together) : null,
    similar ? rail("similar", t("similar"), similar.items, similar) : null,
    forYouSlot);
  await refresh(null);
  return view;
}

// ---------------------------------------------------------------- suggestions

let suggestTimer = null;
let suggestIndex = -1;

function hideSuggestions() {
  const list = document.getElementById("suggestions");
  list.hidden = true;
  list.replaceChildren();
  suggestIndex = -1;
}

async function showSuggestions(text) {
  const list = document.getElementById("suggestions");
  let answer;
  try {
    answer = await api(`/v1/suggest${query({ q: text, n: 8, lang: lang() })}`);
  } catch (_) {
    return hideSuggestions();
  }
  if (document.getElementById("q").value !== text) return; // typed on meanwhile
  if (!answer.suggestions.length) return hideSuggestions();
  fill(list, answer.suggestions.map((s, i) => h("li", {
    role: "option", class: `suggestion ${s.kind}`, dataset: { index: i, kind: s.kind, item: s.item || "" },
    onmousedown: (e) => { e.preventDefault(); pick(s); },
  }, h("span", { class: "kind" }, s.kind === "query" ? "⌕" : "▢"), s.text)));
  list.hidden = false;
  list.suggestions = answer.suggestions;
  suggestIndex = -1;
}

function pick(s) {
  hideSuggestions();
  document.getElementById("q").value = s.text;
  if (s.kind === "item" && s.item) go(`/item/${encodeURIComponent(s.item)}`);
  else go("/search", { q: s.text });
}

function setupSearch() {
  const input = document.getElementById("q");
  const list = document.getElementById("suggestions");
  input.addEventListener("input", () => {
    clearTimeout(suggestTimer);
    const text = input.value;
    if (!text.trim()) return hideSuggestions();
    suggestTimer = setTimeout(() => showSuggestions(text), 120);
  });
  input.addEventListener("keydown", (e) => {
    const options = [...list.children];
    if (list.hidden || !options.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      suggestIndex = (suggestIndex + (e.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
      options.forEach((o, i) => o.setAttribute("aria-selected", String(i === suggestIndex)));
    } else if (e.key === "Enter" && suggestIndex >= 0) {
      e.preventDefault();
      pick(list.suggestions[suggestIndex]);
    } else if (e.key === "Escape") {
      hideSuggestions();
    }
  });
  input.addEventListener("blur", () => setTimeout(hideSuggestions, 150));
  document.getElementById("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    hideSuggestions();
    go("/search", { q: input.value.trim() });
  });
}

// ---------------------------------------------------------------- chrome

function applyLanguage() {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  document.getElementById("q").placeholder = t("search_placeholder");
  document.getElementById("search-button").textContent = t("search");
  document.getElementById("shopper-label").textContent = t("shopper");
  document.getElementById("admin-link").textContent = t("admin");
  for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang()));
}

function start() {
  setupSearch();
  document.getElementById("shopper").addEventListener("change", (e) => {
    if (e.target.value === "__new") newVisitor();
    else setUser(e.target.value);
    renderShopperSelect();
    render();
  });
  for (const b of document.querySelectorAll("[data-lang]")) {
    b.addEventListener("click", () => {
      setLang(b.dataset.lang);
      applyLanguage();
      renderShopperSelect();
      render();
    });
  }
  onKeyNeeded(() => {
    const slot = document.getElementById("key-slot");
    if (!slot.firstChild) slot.append(keyForm(() => { slot.replaceChildren(); loadShoppers().then(render); }));
  });
  // A link from before the switch (`/?q=…`) still searches.
  const legacy = new URLSearchParams(location.search).get("q");
  if (legacy && !location.hash) location.hash = `#/search${query({ q: legacy })}`;
  window.addEventListener("hashchange", render);
  applyLanguage();
  loadShoppers().then(render);
}

start();
