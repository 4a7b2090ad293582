// Shared by the storefront and the admin console: the API client (with the key from local
// storage), the UI strings in English and Chinese, a DOM builder that never parses HTML
// from data, and the generated product placeholder.

const KEY = "souk.key";
const LANG = "souk.lang";

/** An API error: the server's JSON body (`code`, `message`, `field`) and the status. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

const keyListeners = [];
/** Called with the error when a request is refused for want of a key (401/403). */
export function onKeyNeeded(listener) {
  keyListeners.push(listener);
}

export function apiKey() {
  return localStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY, key.trim());
  else localStorage.removeItem(KEY);
}

/** Call the JSON API; `body` is sent as JSON. Resolves to the parsed answer (null on 204). */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch (_) {
    parsed = { message: text };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 || response.status === 403) keyListeners.forEach((l) => l(error));
    throw error;
  }
  return parsed;
}

/** A query string from an object, skipping empty values; arrays repeat the key. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => search.append(k, x));
    else search.append(k, String(v));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Build an element: `h("a", {href: "#", class: "x", onclick: f, dataset: {item: id}}, "text", child)`.
 * Text is always a text node: data never becomes markup.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "path", "rect", "line", "text", "polyline", "circle", "g", "title"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class" && !svg) el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function lang() {
  return localStorage.getItem(LANG) === "zh" ? "zh" : "en";
}

export function setLang(value) {
  localStorage.setItem(LANG, value === "zh" ? "zh" : "en");
  document.documentElement.lang = value === "zh" ? "zh-CN" : "en";
}

const STRINGS = {
  en: {
    search_placeholder: "Search products",
    search: "Search",
    shopper: "Shopper",
    new_visitor: "New visitor",
    for_you: "For you",
    because_viewed: "Because you viewed {0}",
    trending: "Trending now",
    trending_in: "Trending in {0}",
    new_arrivals: "New arrivals",
    results: "{0} results",
    results_for: "{0} results for “{1}”",
    did_you_mean: "Did you mean",
    approximate: "Also matched spellings close to: {0}",
    relaxed: "No product matches every word; showing products that match some of them.",
    no_results: "Nothing matches “{0}”.",
    no_results_help: "Check the spelling, use fewer words, or clear the filters. Meanwhile, here is what shoppers like now:",
    popular_searches: "Popular searches",
    clear: "Clear",
    clear_all: "Clear all filters",
    category: "Category",
    brand: "Brand",
    price: "Price",
    sort: "Sort",
    sort_relevance: "Relevance",
    sort_price_asc: "Price: low to high",
    sort_price_desc: "Price: high to low",
    sort_newest: "Newest",
    sort_popularity: "Popularity",
    previous: "Previous",
    next: "Next",
    page: "Page {0} of {1}",
    add_to_cart: "Add to cart",
    buy_now: "Buy now",
    added: "Added to your cart — your recommendations are updated below.",
    bought: "Thank you for your order — your recommendations are updated below.",
    similar: "Similar items",
    bought_together: "Frequently bought together",
    now_for_you: "Recommended for you now",
    why: "why?",
    why_title: "Why this item",
    unavailable: "Currently unavailable",
    description: "Description",
    reviews_say: "What {0} reviews say: {1}",
    reviews_positive: "mostly positive",
    reviews_mixed: "mixed",
    reviews_negative: "mostly negative",
    attributes: "Details",
    home: "Home",
    loading: "Loading…",
    error: "Something went wrong: {0}",
    key: "API key",
    key_needed: "This shop needs an API key. Enter one to continue.",
    save: "Save",
    admin: "Admin",
    events: "events",
    top_categories: "mostly {0}",
    visitor_note: "A new visitor has no history yet: the shop shows what is trending, and learns from the first clicks.",
    onboard_title: "What do you like? Pick a few and your first page follows.",
    onboard_save: "Show me",
    r_als: "Shoppers with tastes like yours liked it",
    r_ease: "Shoppers with tastes like yours liked it",
    r_rp3beta: "Often found together with things you liked",
    r_itemknn: "Similar to {0}, which you {1}",
    r_itemknn_plain: "Similar to items you looked at",
    r_session: "Goes with what you are looking at right now",
    r_popularity: "Popular in the shop",
    r_trending: "Trending now",
    r_catalog: "Same category or brand",
    r_content: "Like what you looked at, by its description",
    r_graph: "Same {0} as {1}",
    r_graph_plain: "Shares a {0} with items you looked at",
    rel_brand: "brand", rel_category: "category", rel_tag: "tag", rel_directed_by: "director",
    rel_actor: "actor", rel_genre: "genre", rel_written_by: "writer", rel_produced_by: "producer",
    rel_cinematography: "cinematographer", rel_production_companies: "studio", rel_language: "language",
    rel_country: "country", rel_subjects: "subject", rel_award_won: "award", rel_award_nomination: "award nomination",
    rel_sequel: "series", rel_prequel: "series", rel_rating: "rating", rel_year: "year",
    r_explore: "New here: tell us what you think",
    r_social: "Liked by shoppers like you and the people you follow",
    r_friends: "{0}, whom you follow, {1} it",
    r_demographic: "Popular with shoppers like you ({0})",
    r_demographic_plain: "Popular with shoppers like you",
    r_preferences: "From {0}, which you said you like",
    r_other: "Recommended by {0}",
    ev_view: "viewed",
    ev_click: "clicked",
    ev_add_to_cart: "put in your cart",
    ev_purchase: "bought",
    ev_favorite: "liked",
    ev_rating: "rated",
    ev_review: "reviewed",
    stage_source: "Source",
    stage_rank: "Rank",
    stage_score: "Score",
    ranker_line: "Learned ranker: score {0}, moved from position {1} of the blend",
    top_features: "What weighed most",
  },
  zh: {
    search_placeholder: "搜索商品",
    search: "搜索",
    shopper: "购物者",
    new_visitor: "新访客",
    for_you: "为你推荐",
    because_viewed: "因为你看过 {0}",
    trending: "当前热门",
    trending_in: "{0} 热门",
    new_arrivals: "新品上架",
    results: "{0} 个结果",
    results_for: "“{1}” 共 {0} 个结果",
    did_you_mean: "你是不是要找",
    approximate: "也匹配了相近的拼写：{0}",
    relaxed: "没有商品包含所有词语，以下商品匹配其中部分词语。",
    no_results: "没有找到与“{0}”相关的商品。",
    no_results_help: "请检查拼写、减少关键词或清除筛选条件。你也可以看看大家正在买的：",
    popular_searches: "热门搜索",
    clear: "清除",
    clear_all: "清除全部筛选",
    category: "类目",
    brand: "品牌",
    price: "价格",
    sort: "排序",
    sort_relevance: "综合",
    sort_price_asc: "价格从低到高",
    sort_price_desc: "价格从高到低",
    sort_newest: "最新",
    sort_popularity: "人气",
    previous: "上一页",
    next: "下一页",
    page: "第 {0} / {1} 页",
    add_to_cart: "加入购物车",
    buy_now: "立即购买",
    added: "已加入购物车——下方的推荐已更新。",
    bought: "感谢下单——下方的推荐已更新。",
    similar: "相似商品",
    bought_together: "经常一起购买",
    now_for_you: "现在为你推荐",
    why: "为什么？",
    why_title: "推荐理由",
    unavailable: "暂时缺货",
    description: "商品描述",
    reviews_say: "{0} 条评价：{1}",
    reviews_positive: "大多好评",
    reviews_mixed: "褒贬不一",
    reviews_negative: "大多差评",
    attributes: "规格参数",
    home: "首页",
    loading: "加载中…",
    error: "出错了：{0}",
    key: "API 密钥",
    key_needed: "此商店需要 API 密钥，请输入后继续。",
    save: "保存",
    admin: "管理",
    events: "次行为",
    top_categories: "常逛 {0}",
    visitor_note: "新访客还没有浏览记录：先展示热门商品，并从最初的点击中学习。",
    onboard_title: "你喜欢什么？选几个，首页随之变化。",
    onboard_save: "看看",
    r_als: "和你口味相近的顾客喜欢它",
    r_ease: "和你口味相近的顾客喜欢它",
    r_rp3beta: "常和你喜欢的商品一起出现",
    r_itemknn: "与你{1}的 {0} 相似",
    r_itemknn_plain: "与你看过的商品相似",
    r_session: "与你正在浏览的商品相配",
    r_popularity: "店内热销",
    r_trending: "当前热门",
    r_catalog: "同类目或同品牌",
    r_content: "与你看过的商品描述相近",
    r_graph: "与 {1} 同{0}",
    r_graph_plain: "与你看过的商品同{0}",
    rel_brand: "品牌", rel_category: "类目", rel_tag: "标签", rel_directed_by: "导演",
    rel_actor: "演员", rel_genre: "类型", rel_written_by: "编剧", rel_produced_by: "制片人",
    rel_cinematography: "摄影师", rel_production_companies: "出品公司", rel_language: "语言",
    rel_country: "国家", rel_subjects: "题材", rel_award_won: "奖项", rel_award_nomination: "奖项提名",
    rel_sequel: "系列", rel_prequel: "系列", rel_rating: "分级", rel_year: "年份",
    r_explore: "新上架，欢迎看看",
    r_social: "和你及你关注的人口味相近的顾客喜欢它",
    r_friends: "你关注的 {0} {1}它",
    r_demographic: "和你相似的顾客喜欢（{0}）",
    r_demographic_plain: "和你相似的顾客喜欢",
    r_preferences: "来自你说过喜欢的 {0}",
    r_other: "来自 {0} 的推荐",
    ev_view: "看过",
    ev_click: "点击过",
    ev_add_to_cart: "加入购物车",
    ev_purchase: "买过",
    ev_favorite: "收藏过",
    ev_rating: "评分过",
    ev_review: "评价过",
    stage_source: "来源",
    stage_rank: "名次",
    stage_score: "得分",
    ranker_line: "排序模型：得分 {0}，原混合排序第 {1} 位",
    top_features: "影响最大的特征",
  },
};

/** The UI string `key` in the current language, `{0}`, `{1}` replaced by `args`. */
export function t(key, ...args) {
  const table = STRINGS[lang()];
  const text = table[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\d)\}/g, (_, i) => (args[Number(i)] ?? "").toString());
}

export function formatPrice(price, currency) {
  if (price === undefined || price === null) return "";
  const locale = lang() === "zh" ? "zh-CN" : "en-US";
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: currency || "USD" }).format(price);
  } catch (_) {
    return price.toFixed(2);
  }
}

export function formatNumber(n) {
  return new Intl.NumberFormat(lang() === "zh" ? "zh-CN" : "en-US").format(n);
}

/** A stable hue for a text (a category colour). */
export function hue(text) {
  let hash = 0;
  for (const c of text || "") hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** A generated picture for an item without an image: its category's colour and initials. */
export function placeholder(item) {
  const category = (item.category && item.category[0]) || item.brand || "";
  // What the item is (the leaf category, "Wireless Earbuds") says more than its brand.
  const leaf = item.category && item.category.length ? item.category[item.category.length - 1] : "";
  const title = leaf || item.title || item.id || "?";
  const words = title.split(/[\s&,/-]+/).filter(Boolean);
  const initials = /[\u3400-\u9fff]/.test(title)
    ? [...title.replace(/[\sA-Za-z0-9]/g, "")].slice(-2).join("") || title.slice(0, 2)
    : words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join("");
  const base = hue(category);
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200">` +
    `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
    `<stop offset="0" stop-color="hsl(${base},70%,88%)"/><stop offset="1" stop-color="hsl(${(base + 40) % 360},60%,72%)"/>` +
    `</linearGradient></defs><rect width="200" height="200" fill="url(#g)"/>` +
    `<text x="100" y="118" font-family="system-ui,sans-serif" font-size="56" font-weight="600" text-anchor="middle" fill="hsl(${base},45%,30%)">` +
    `${escapeXml(initials)}</text></svg>`;
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

function escapeXml(text) {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The item's picture: its `image` URL, else the placeholder (also when the image fails). */
export function picture(item, cls = "pic") {
  const fallback = placeholder(item);
  const img = h("img", { class: cls, alt: "", loading: "lazy", src: item.image || fallback });
  if (item.image) img.addEventListener("error", () => (img.src = fallback), { once: true });
  return img;
}

/** The key form shown when the server asks for one. */
export function keyForm(onSaved) {
  const input = h("input", { type: "password", placeholder: t("key"), value: apiKey(), autocomplete: "off", id: "api-key" });
  return h(
    "form",
    {
      class: "key-form",
      onsubmit: (e) => {
        e.preventDefault();
        setApiKey(input.value);
        onSaved();
      },
    },
    h("span", {}, t("key_needed")),
    input,
    h("button", { type: "submit" }, t("save")),
  );
}
