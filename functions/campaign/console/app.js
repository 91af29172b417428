// The marketer console: pick or build a segment (its count follows), choose channel and template
// (the preview follows), send with a confirmation and watch the progress. Everything is fetched from
// the campaign API with the marketer's bearer token, kept in this tab only.
"use strict";

const $ = (id) => document.getElementById(id);
const channelNames = { sms: "短信", wecom: "企业微信", miniprogram: "小程序订阅消息", email: "邮件", webhook: "Webhook", outbox: "站内信" };
const statusNames = { draft: "草稿", scheduled: "已定时", triggered: "已触发，正在圈选", sending: "发送中", sent: "请求已全部发出", failed: "失败" };
const platformNames = { tmall: "天猫", taobao: "淘宝", douyin: "抖音", jd: "京东", wechat: "微信", youzan: "有赞", app: "App", store: "门店", miniprogram: "小程序" };
const poolNames = { plaintext: "明文池", ciphertext: "密文池" };
const reasonNames = { opted_out: "已退订", opt_out: "已退订", no_consent: "未授权", daily_cap: "每日上限", quiet_hours: "免打扰时段", no_address: "无可用地址", duplicate: "重复" };
const CUSTOM = "__custom";
let token = "";
let segments = [];
let templates = [];
let lastCount = null;
let countSeq = 0;
let previewSeq = 0;
let watching = null;

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json", "X-Omnimember-Operator": operator() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) { showLogin("令牌无效，请重新输入。"); }
  if (!res.ok) { const e = new Error(data.error || res.statusText); e.field = data.field; throw e; }
  return data;
}

// operator names the marketer in the audit records (remembered for this tab).
function operator() {
  const who = $("operator") ? $("operator").value.trim() : "";
  if (who) sessionStorage.setItem("omnimember.operator", who);
  return who || "console";
}

function debounce(fn, ms) {
  let t;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

function num(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function list(id) {
  return $(id).value.split(/[,，\s]+/).map((s) => s.trim()).filter(Boolean);
}

// customRule reads the builder into a segment rule (money in fen).
function customRule() {
  const r = {};
  const tiers = list("r-tiers"); if (tiers.length) r.tiers = tiers;
  if ($("r-pool").value) r.pool = $("r-pool").value;
  const channels = [...document.querySelectorAll("input[name=r-channel]:checked")].map((c) => c.value);
  if (channels.length) r.channels = channels;
  const smin = num("r-spend-min"), smax = num("r-spend-max");
  if (smin !== null || smax !== null) {
    r.spendFen = { days: num("r-spend-days") || 0 };
    if (smin !== null) r.spendFen.min = Math.round(smin * 100);
    if (smax !== null) r.spendFen.max = Math.round(smax * 100);
  }
  if (num("r-last-order") !== null) r.daysSinceLastOrder = { min: num("r-last-order") };
  if (num("r-last-interaction") !== null) r.daysSinceLastInteraction = { min: num("r-last-interaction") };
  if (num("r-interactions") !== null) r.interactions = { days: 30, min: num("r-interactions") };
  if (num("r-points") !== null) r.points = { min: num("r-points") };
  const tags = list("r-tags"); if (tags.length) r.tags = tags;
  return r;
}

function isCustom() { return $("segment").value === CUSTOM; }

async function refreshCount() {
  const seq = ++countSeq;
  $("rule-error").textContent = "";
  $("count").textContent = "…";
  const seg = segments.find((s) => s.name === $("segment").value);
  $("segment-desc").textContent = isCustom() ? "按下方规则圈选会员。" : (seg ? seg.description : "");
  $("builder").open = isCustom() || $("builder").open;
  try {
    const out = isCustom()
      ? await api("POST", "/v1/segments:count", customRule())
      : await api("GET", "/v1/segments/" + encodeURIComponent($("segment").value) + ":count");
    if (seq !== countSeq) return;
    lastCount = out.count;
    $("count").textContent = out.count.toLocaleString("zh-CN");
    $("count-meta").textContent = "实时统计，用时 " + out.tookMs + " 毫秒";
    renderSample(out.sample || []);
  } catch (e) {
    if (seq !== countSeq) return;
    lastCount = null;
    $("count").textContent = "—";
    $("rule-error").textContent = (e.field ? e.field + "：" : "") + e.message;
    renderSample([]);
  }
}

function renderSample(rows) {
  const body = $("sample");
  body.replaceChildren();
  for (const s of rows) {
    const tr = document.createElement("tr");
    const cells = [s.oneId, s.phone || "（无手机号）", poolNames[s.pool] || s.pool, (s.channels || []).map((c) => platformNames[c] || c).join("、")];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i < 2) td.className = "mono";
      tr.append(td);
    });
    body.append(tr);
  }
}

// offer reads the message fields shared by the preview and the campaign.
function offer() {
  const o = { template: $("template").value };
  if ($("coupon-title").value.trim() || $("coupon-code").value.trim()) {
    o.coupon = { title: $("coupon-title").value.trim(), code: $("coupon-code").value.trim() };
  }
  const bonus = num("bonus"); if (bonus) o.bonusPoints = bonus;
  if ($("mult").value.trim()) {
    o.multiplier = { factor: $("mult").value.trim(),
      from: ($("mult-from").value || "2000-01-01") + "T00:00:00+08:00",
      to: ($("mult-to").value || "2000-01-02") + "T23:59:59+08:00" };
  }
  return o;
}

async function refreshPreview() {
  const seq = ++previewSeq;
  $("msg-error").textContent = "";
  try {
    const out = await api("POST", "/v1/campaigns:preview", offer());
    if (seq !== previewSeq) return;
    $("preview").textContent = out.text + ($("channel").value === "sms" ? " 拒收请回复R" : "");
    $("preview-en").textContent = out.en;
  } catch (e) {
    if (seq !== previewSeq) return;
    $("preview").textContent = "（无法预览）";
    $("preview-en").textContent = "";
    $("msg-error").textContent = (e.field ? e.field + "：" : "") + e.message;
  }
}

function campaignRequest() {
  const req = Object.assign({ name: $("name").value.trim(), channel: $("channel").value }, offer());
  if (isCustom()) req.rule = customRule(); else req.segment = $("segment").value;
  if ($("when").value) req.scheduledAt = new Date($("when").value).toISOString();
  return req;
}

function askToSend() {
  $("send-error").textContent = "";
  if (lastCount === null) { $("send-error").textContent = "请先选择有效的人群。"; return; }
  const tpl = templates.find((t) => t.name === $("template").value);
  const when = $("when").value ? "于 " + $("when").value.replace("T", " ") + " " : "立即";
  const o = offer();
  // Bonus points and multiplier windows are credited to each member's points account, once each.
  const rewards = (o.bonusPoints ? `每位会员将获赠 ${o.bonusPoints} 积分（记入积分账户，每人一次）。` : "") +
    (o.multiplier ? `活动期间下单积分按 ${o.multiplier.factor} 倍累积。` : "");
  $("confirm-text").textContent = `将${when}通过「${channelNames[$("channel").value]}」向 ${lastCount.toLocaleString("zh-CN")} 位会员发送「${tpl ? tpl.title : ""}」。${rewards}` +
    `营销消息只发给同意在此渠道接收营销的会员，其余计为「未获营销授权」。发送后无法撤回，确认吗？`;
  $("confirm-dialog").showModal();
}

async function send() {
  $("send").disabled = true;
  try {
    const c = await api("POST", "/v1/campaigns", campaignRequest());
    if (!c.scheduledAt) await api("POST", "/v1/campaigns/" + c.id + ":trigger");
    watch(c.id, c.name);
    loadCampaigns();
  } catch (e) {
    $("send-error").textContent = (e.field ? e.field + "：" : "") + e.message;
  } finally {
    $("send").disabled = false;
  }
}

function watch(id, name) {
  clearTimeout(watching);
  $("progress").hidden = false;
  $("progress-name").textContent = name;
  const tick = async () => {
    try {
      const v = await api("GET", "/v1/campaigns/" + id);
      renderProgress(v);
      if (v.progress.done || v.status === "failed") { loadCampaigns(); return; }
    } catch (e) { $("send-error").textContent = e.message; }
    watching = setTimeout(tick, 700);
  };
  tick();
}

function renderProgress(v) {
  const p = v.progress;
  const status = $("progress-status");
  status.textContent = p.done ? "已完成" : (statusNames[v.status] || v.status);
  status.className = "badge" + (p.done ? " done" : v.status === "failed" ? " failed" : "");
  status.dataset.state = p.done ? "done" : v.status;
  $("progress-bar").style.width = p.percentFinished + "%";
  for (const k of ["targeted", "published", "sent", "suppressed", "failed"]) {
    $("p-" + k).textContent = p[k].toLocaleString("zh-CN");
  }
  // Marketing is opt-in (PIPL): members who never consented on the channel are not messaged.
  const noConsent = (p.suppressedBy || {}).no_consent || 0;
  $("p-noconsent").textContent = noConsent.toLocaleString("zh-CN");
  const reasons = Object.entries(p.suppressedBy || {}).map(([r, n]) => (reasonNames[r] || r) + " " + n);
  $("p-reasons").textContent = (reasons.length ? "拦截原因：" + reasons.join("，") + "。" : "") +
    (noConsent ? ` ${noConsent} 位会员未同意在此渠道接收营销消息，未发送；会员同意后（由渠道系统记录：PUT /v1/members/{oneId}/consent）才能收到。` : "") +
    (v.error ? " 错误：" + v.error : "");
}

async function loadCampaigns() {
  const out = await api("GET", "/v1/campaigns");
  const body = $("campaigns");
  body.replaceChildren();
  for (const c of out.campaigns) {
    const tr = document.createElement("tr");
    const seg = segments.find((s) => s.name === c.segment);
    for (const text of [c.name, seg ? seg.title : "自定义", channelNames[c.channel] || c.channel, statusNames[c.status] || c.status, String(c.targeted)]) {
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }
    tr.addEventListener("click", () => watch(c.id, c.name));
    body.append(tr);
  }
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value; o.textContent = text;
  return o;
}

async function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = "已登录 · 令牌仅保存在本标签页";
  const [segs, tpls] = await Promise.all([api("GET", "/v1/segments"), api("GET", "/v1/templates")]);
  segments = segs.segments; templates = tpls.templates;
  $("segment").replaceChildren(...segments.map((s) => option(s.name, s.title + "（" + s.name + "）")), option(CUSTOM, "自定义规则…"));
  $("segment").value = segments.some((s) => s.name === "dormant") ? "dormant" : segments[0].name;
  $("channel").replaceChildren(...tpls.channels.map((c) => option(c, channelNames[c] || c)));
  $("template").replaceChildren(...templates.map((t) => option(t.name, t.title)));
  $("template").value = templates.some((t) => t.name === "winback_coupon") ? "winback_coupon" : templates[0].name;
  const recount = debounce(refreshCount, 250);
  const repreview = debounce(refreshPreview, 200);
  $("segment").addEventListener("change", refreshCount);
  $("builder").addEventListener("input", () => { if (!isCustom()) $("segment").value = CUSTOM; recount(); });
  for (const id of ["channel", "template", "coupon-title", "coupon-code", "bonus", "mult", "mult-from", "mult-to"]) {
    $(id).addEventListener("input", repreview);
  }
  $("operator").value = sessionStorage.getItem("omnimember.operator") || "";
  $("send").addEventListener("click", askToSend);
  $("confirm-dialog").addEventListener("close", () => { if ($("confirm-dialog").returnValue === "ok") send(); });
  await Promise.all([refreshCount(), refreshPreview(), loadCampaigns()]);
  document.body.dataset.ready = "true";
}

function showLogin(message) {
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

document.addEventListener("DOMContentLoaded", () => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("omnimember.token", fromHash);
    history.replaceState(null, "", location.pathname);
  }
  token = sessionStorage.getItem("omnimember.token") || "";
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("omnimember.token", token);
    start().catch((e) => showLogin(e.message));
  });
  if (token) start().catch((e) => showLogin(e.message)); else showLogin();
});
