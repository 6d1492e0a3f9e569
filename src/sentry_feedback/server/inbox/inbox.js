/* The feedback inbox: a client of the server's REST API under /api/0/, without framework or build step.

   Safety rules kept throughout: every value that comes from feedback (or from an event, an attachment, the
   server) goes into the page with textContent or setAttribute of a harmless attribute, never as HTML; links
   are made only from http:// and https:// URLs; no inline style or script (the page's CSP forbids them).
   Mutations send the X-CSRF-Token header (the sf_csrf cookie); the session cookie authenticates. */
(function () {
  "use strict";

  // -- constants ---------------------------------------------------------------------------------------------

  var PER_PAGE = 25;
  var POLL_MS = 3000;
  var PERIODS = ["24h", "7d", "14d", "30d", "90d"];
  var SORTS = ["-timestamp", "timestamp", "projectId", "-projectId"];
  var STATUSES = ["", "unresolved", "resolved"];
  var DEFAULTS = {
    query: "",
    status: "",
    project: "",
    environment: "",
    statsPeriod: "7d",
    sort: "-timestamp",
    cursor: "",
    per_page: "",
    id: "",
  };
  var STATE_KEYS = Object.keys(DEFAULTS);
  var IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  var PERIOD_TEXT = {
    "24h": "in the last 24 hours",
    "7d": "in the last 7 days",
    "14d": "in the last 14 days",
    "30d": "in the last 30 days",
    "90d": "in the last 90 days",
  };

  // -- the page's state --------------------------------------------------------------------------------------

  var state = readState();
  var org = null; // the organization slug
  var projects = []; // [{id, slug, name}]
  var items = []; // the items of the page shown, in order
  var rows = new Map(); // id -> row (see createRow)
  var checked = new Set(); // ids ticked for a bulk action
  var links = { previous: null, next: null };
  var current = null; // the item shown in the detail
  var listRequest = 0; // the newest list request: older answers are dropped
  var detailRequest = 0;
  var loading = false;
  var mutating = 0;
  var signedOut = false;
  var pollTimer = null;
  var dsnCache = new Map(); // project slug -> DSN text
  var narrow = window.matchMedia("(max-width: 820px)");

  function $(id) {
    return document.getElementById(id);
  }

  function readState() {
    var params = new URLSearchParams(window.location.search);
    var read = {};
    STATE_KEYS.forEach(function (key) {
      var value = params.get(key);
      read[key] = value === null ? DEFAULTS[key] : value;
    });
    if (PERIODS.indexOf(read.statsPeriod) < 0) read.statsPeriod = DEFAULTS.statsPeriod;
    if (SORTS.indexOf(read.sort) < 0) read.sort = DEFAULTS.sort;
    if (STATUSES.indexOf(read.status) < 0) read.status = DEFAULTS.status;
    if (!/^[1-9][0-9]?$|^100$/.test(read.per_page)) read.per_page = DEFAULTS.per_page;
    return read;
  }

  /* The state in the URL (only what differs from the defaults): push for a new view, replace otherwise. */
  function writeState(push) {
    var params = new URLSearchParams();
    STATE_KEYS.forEach(function (key) {
      if (state[key] !== DEFAULTS[key]) params.set(key, state[key]);
    });
    var text = params.toString();
    var url = window.location.pathname + (text ? "?" + text : "");
    if (url === window.location.pathname + window.location.search) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  }

  function perPage() {
    return state.per_page ? Number(state.per_page) : PER_PAGE;
  }

  // -- DOM helpers ---------------------------------------------------------------------------------------------

  /* An element with attributes (names from this file only, values set with setAttribute) and children (nodes
     or strings, added as text). Never parses HTML. */
  function h(tag, attributes) {
    var element = document.createElement(tag);
    if (attributes) {
      Object.keys(attributes).forEach(function (name) {
        var value = attributes[name];
        if (value === null || value === undefined || value === false) return;
        if (name === "class") element.className = value;
        else if (name === "text") element.textContent = String(value);
        else element.setAttribute(name, value === true ? "" : String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(element, arguments[i]);
    return element;
  }

  function append(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(parent, c); });
    else if (typeof child === "string" || typeof child === "number") parent.appendChild(document.createTextNode(String(child)));
    else parent.appendChild(child);
  }

  function clear(element) {
    while (element.firstChild) element.removeChild(element.firstChild);
  }

  function text(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    try {
      return JSON.stringify(value);
    } catch (e) {
      return String(value);
    }
  }

  /* A URL for a link: only http(s), as typed by the sender; null for anything else (javascript:, data:, ...). */
  function httpUrl(value) {
    if (typeof value !== "string" || !/^https?:\/\//i.test(value)) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function urlNode(value) {
    var href = httpUrl(value);
    if (!href) return h("span", { class: "url-text" }, text(value));
    return h("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, text(value));
  }

  function enc(value) {
    return encodeURIComponent(String(value));
  }

  function excerpt(message, length) {
    var flat = text(message).replace(/\s+/g, " ").trim();
    return flat.length > length ? flat.slice(0, length - 1) + "\u2026" : flat;
  }

  function formatSize(bytes) {
    if (typeof bytes !== "number" || !isFinite(bytes)) return "";
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KiB";
    return (bytes / 1024 / 1024).toFixed(1) + " MiB";
  }

  var relative = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })
    : null;

  function relativeTime(iso) {
    var when = Date.parse(iso);
    if (isNaN(when)) return text(iso);
    var seconds = Math.round((when - Date.now()) / 1000);
    var size = Math.abs(seconds);
    if (!relative) return new Date(when).toLocaleString();
    if (size < 45) return "just now";
    if (size < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (size < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (size < 86400 * 30) return relative.format(Math.round(seconds / 86400), "day");
    return new Date(when).toLocaleDateString();
  }

  function absoluteTime(iso) {
    var when = Date.parse(iso);
    return isNaN(when) ? text(iso) : new Date(when).toLocaleString();
  }

  function setTime(element, iso) {
    element.textContent = relativeTime(iso);
    if (typeof iso === "string") element.setAttribute("datetime", iso);
    element.setAttribute("title", absoluteTime(iso));
  }

  function announce(message) {
    var live = $("live");
    live.textContent = "";
    window.setTimeout(function () {
      live.textContent = message;
    }, 50);
  }

  function showError(message) {
    $("error-text").textContent = message;
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
  }

  // -- the API -------------------------------------------------------------------------------------------------

  function ApiError(status, detail) {
    this.status = status;
    this.detail = detail;
    this.message = detail;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function csrfToken() {
    var found = "";
    document.cookie.split(";").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0 && pair.slice(0, at).trim() === "sf_csrf") {
        try {
          found = decodeURIComponent(pair.slice(at + 1).trim());
        } catch (e) {
          found = pair.slice(at + 1).trim();
        }
      }
    });
    return found;
  }

  /* fetch() on the same origin with the session cookie; an ApiError for anything but 2xx. */
  function api(path, options) {
    options = options || {};
    var method = options.method || "GET";
    var headers = { Accept: "application/json" };
    var body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
    return window
      .fetch(path, { method: method, headers: headers, body: body, credentials: "same-origin", cache: "no-store" })
      .catch(function (error) {
        throw new ApiError(0, "Cannot reach the server (" + (error && error.message ? error.message : "network error") + ").");
      })
      .then(function (response) {
        if (response.ok) return response;
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (answer) {
            var detail = answer && typeof answer.detail === "string" ? answer.detail : response.statusText;
            if (response.status === 401) showSignedOut();
            throw new ApiError(response.status, detail || "HTTP " + response.status);
          });
      });
  }

  function apiJson(path, options) {
    return api(path, options).then(function (response) {
      return response.status === 204 ? null : response.json();
    });
  }

  /* What a failed request means for the user, starting with what was being done. */
  function describe(action, error) {
    var status = error && error.status;
    var detail = error && error.detail ? error.detail : String(error);
    if (status === 401) return action + " failed: you are signed out. Sign in again.";
    if (status === 403 && /^CSRF/i.test(detail)) {
      return action + " failed: the page's security check did not pass (" + detail + "). Reload the page and try again.";
    }
    if (status === 403) {
      return action + " failed: this token may only read feedback, not change it (the server said: " + detail + ").";
    }
    if (status === 404) return action + " failed: the feedback no longer exists.";
    if (status === 0) return action + " failed: " + detail;
    return action + " failed (" + status + "): " + detail;
  }

  function showSignedOut() {
    if (signedOut) return;
    signedOut = true;
    $("signed-out").hidden = false;
    stopPolling();
  }

  function projectOf(item) {
    if (item && typeof item.project === "string" && item.project) return item.project;
    if (item && item.project_id !== null && item.project_id !== undefined && item.project_id !== "") {
      return String(item.project_id);
    }
    if (state.project) return state.project;
    return projects.length ? projects[0].slug : "default";
  }

  function itemPath(item) {
    return "/api/0/projects/" + enc(org) + "/" + enc(projectOf(item)) + "/user-feedback/" + enc(item.id) + "/";
  }

  /* The Link header's previous and next: {cursor, results}. Cursors stay opaque. */
  function parseLinks(header) {
    var found = { previous: null, next: null };
    var pattern = /<[^>]*>\s*;\s*rel="(previous|next)"\s*;\s*results="(true|false)"\s*;\s*cursor="([^"]*)"/g;
    var match;
    while ((match = pattern.exec(header || "")) !== null) {
      found[match[1]] = { results: match[2] === "true", cursor: match[3] };
    }
    return found;
  }

  // -- start ---------------------------------------------------------------------------------------------------

  function start() {
    bindControls();
    applyStateToControls();
    if (new URLSearchParams(window.location.search).get("sign-in") === "failed") {
      // A link with a token that was refused, while this browser still has a session.
      showError("The token in the link was not accepted; you are still signed in with your earlier session.");
      writeState(false);
    }
    apiJson("/api/0/organizations/")
      .then(function (organizations) {
        if (!Array.isArray(organizations) || !organizations.length || typeof organizations[0].slug !== "string") {
          throw new ApiError(500, "the server names no organization");
        }
        org = organizations[0].slug;
        loadFilters();
        return loadList({ initial: true });
      })
      .catch(function (error) {
        if (error && error.status === 401) return;
        showError(describe("Loading the inbox", error));
      })
      .then(schedulePoll);
  }

  function loadFilters() {
    apiJson("/api/0/organizations/" + enc(org) + "/projects/")
      .then(function (answer) {
        projects = Array.isArray(answer) ? answer.filter(function (p) { return p && typeof p.slug === "string"; }) : [];
        fillSelect($("filter-project"), projects.map(function (p) {
          return { value: p.slug, label: typeof p.name === "string" && p.name ? p.name : p.slug };
        }), state.project);
        if (!$("empty").hidden) showEmptyHint();
      })
      .catch(function (error) {
        if (error.status !== 401) showError(describe("Loading the projects", error));
      });
    apiJson("/api/0/organizations/" + enc(org) + "/environments/")
      .then(function (answer) {
        var names = Array.isArray(answer) ? answer.filter(function (e) { return e && typeof e.name === "string"; }) : [];
        fillSelect($("filter-environment"), names.map(function (e) { return { value: e.name, label: e.name }; }),
          state.environment);
      })
      .catch(function (error) {
        if (error.status !== 401) showError(describe("Loading the environments", error));
      });
  }

  /* Options after the first ("All ..."), keeping the selected value even when the server does not list it. */
  function fillSelect(select, options, selected) {
    while (select.options.length > 1) select.remove(1);
    var seen = false;
    options.forEach(function (option) {
      var element = h("option", { value: option.value }, option.label);
      select.appendChild(element);
      if (option.value === selected) seen = true;
    });
    if (selected && !seen) select.appendChild(h("option", { value: selected }, selected));
    select.value = selected;
  }

  function applyStateToControls() {
    $("search").value = state.query;
    $("filter-status").value = state.status;
    ensureOption($("filter-project"), state.project);
    ensureOption($("filter-environment"), state.environment);
    $("filter-period").value = state.statsPeriod;
    $("filter-sort").value = state.sort;
  }

  function ensureOption(select, value) {
    if (value && !Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
      select.appendChild(h("option", { value: value }, value));
    }
    select.value = value;
  }

  // -- the list ------------------------------------------------------------------------------------------------

  function composedQuery() {
    return [state.status ? "status:" + state.status : "", state.query.trim()].filter(Boolean).join(" ");
  }

  /* Fetch the page the state names and show it. quiet: a poll (no busy state, errors not shown twice). */
  function loadList(options) {
    options = options || {};
    if (!org || signedOut) return Promise.resolve();
    var request = ++listRequest;
    var params = new URLSearchParams();
    var query = composedQuery();
    if (query) params.set("query", query);
    params.set("statsPeriod", state.statsPeriod);
    params.set("sort", state.sort);
    params.set("per_page", String(perPage()));
    if (state.project) params.append("project", state.project);
    if (state.environment) params.append("environment", state.environment);
    if (state.cursor) params.set("cursor", state.cursor);
    if (!options.quiet) {
      loading = true;
      $("list").setAttribute("aria-busy", "true");
    }
    return api("/api/0/organizations/" + enc(org) + "/user-feedback/?" + params.toString())
      .then(function (response) {
        return response.json().then(function (answer) {
          return { response: response, answer: answer };
        });
      })
      .then(function (result) {
        if (request !== listRequest) return;
        finishLoading();
        setSearchError(null);
        var data = result.answer && Array.isArray(result.answer.data) ? result.answer.data : [];
        data = data.filter(function (item) { return item && typeof item.id === "string"; });
        links = parseLinks(result.response.headers.get("Link"));
        if (state.cursor && links.previous && !links.previous.results) {
          // Back on the first page: drop the cursor, so that the view polls and is the plain first page.
          state.cursor = "";
          writeState(false);
        }
        var arrived = renderList(data);
        renderCounts(result.response.headers.get("X-Hits"), result.response.headers.get("X-Max-Hits"));
        if (options.quiet && arrived > 0) {
          announce(arrived === 1 ? "1 new feedback arrived." : arrived + " new feedback arrived.");
        } else if (!options.quiet) {
          announce(data.length ? "Showing " + data.length + " feedback." : "No feedback to show.");
        }
        syncDetail(options);
      })
      .catch(function (error) {
        if (request !== listRequest) return;
        finishLoading();
        if (error && error.status === 400) {
          setSearchError(error.detail);
          renderList([]);
          renderCounts(null, null);
          links = { previous: null, next: null };
          updatePager();
          return;
        }
        if (error && error.status === 401) return;
        if (!options.quiet) showError(describe("Loading the feedback", error));
      });
  }

  function finishLoading() {
    loading = false;
    $("list").removeAttribute("aria-busy");
  }

  function setSearchError(detail) {
    var element = $("search-error");
    var search = $("search");
    if (detail) {
      element.textContent = "The search was not accepted: " + detail;
      element.hidden = false;
      search.setAttribute("aria-invalid", "true");
    } else {
      element.textContent = "";
      element.hidden = true;
      search.removeAttribute("aria-invalid");
    }
  }

  /* Show `data` in the list, reusing the rows of items already shown (so focus and ticks survive a poll).
     Returns how many items were not shown before. */
  function renderList(data) {
    var list = $("list");
    var before = new Set(rows.keys());
    var wanted = new Set();
    data = data.filter(function (item) {
      if (wanted.has(item.id)) return false;
      wanted.add(item.id);
      return true;
    });
    rows.forEach(function (row, id) {
      if (!wanted.has(id)) {
        row.li.remove();
        rows.delete(id);
      }
    });
    var next = list.firstElementChild;
    data.forEach(function (item) {
      var row = rows.get(item.id);
      if (!row) {
        row = createRow(item);
        rows.set(item.id, row);
      }
      updateRow(row, item);
      if (row.li === next) next = next.nextElementSibling;
      else list.insertBefore(row.li, next);
    });
    items = data;
    Array.from(checked).forEach(function (id) {
      if (!wanted.has(id)) checked.delete(id);
    });
    updateSelectionMarks();
    updateBulk();
    updatePager();
    updateEmpty();
    var arrived = 0;
    data.forEach(function (item) {
      if (!before.has(item.id)) arrived++;
    });
    return arrived;
  }

  function createRow(item) {
    var row = {};
    row.li = h("li", { class: "row" });
    row.checkbox = h("input", { type: "checkbox", class: "row-check" });
    row.checkbox.addEventListener("change", function () {
      if (row.checkbox.checked) checked.add(row.item.id);
      else checked.delete(row.item.id);
      updateBulk();
    });
    row.button = h("button", { type: "button", class: "row-open" });
    row.button.addEventListener("click", function () {
      select(row.item.id, { focus: false });
      if (narrow.matches) {
        $("detail").scrollIntoView();
        $("detail").focus({ preventScroll: true });
      }
    });
    row.button.addEventListener("keydown", onRowKeydown);
    row.contact = h("span", { class: "row-contact" });
    row.time = h("time", { class: "row-time" });
    row.message = h("span", { class: "row-message" });
    row.meta = h("span", { class: "row-meta" });
    append(row.button, [h("span", { class: "row-top" }, row.contact, row.time), row.message, row.meta]);
    append(row.li, [row.checkbox, row.button]);
    row.item = item;
    return row;
  }

  function contactOf(item) {
    var user = item.user || {};
    var name = item.name || user.display_name;
    var email = item.contact_email || user.email;
    if (name && email) return text(name) + " <" + text(email) + ">";
    return text(name || email || "Anonymous");
  }

  function updateRow(row, item) {
    row.item = item;
    row.li.setAttribute("data-id", item.id);
    row.li.classList.toggle("resolved", item.status === "resolved");
    row.contact.textContent = contactOf(item);
    setTime(row.time, item.timestamp);
    row.message.textContent = excerpt(item.message, 160) || "(no message)";
    clear(row.meta);
    append(row.meta, statusBadge(item.status));
    if (item.project) append(row.meta, h("span", { class: "chip", title: "Project" }, text(item.project)));
    if (item.environment) append(row.meta, h("span", { class: "chip", title: "Environment" }, text(item.environment)));
    var count = typeof item.attachment_count === "number" ? item.attachment_count : 0;
    if (count > 0) {
      var clip = h("span", { class: "clip", title: count === 1 ? "1 attachment" : count + " attachments" });
      clip.appendChild(document.importNode($("icon-clip").content, true));
      append(clip, h("span", { class: "visually-hidden" }, count === 1 ? "1 attachment" : count + " attachments"));
      append(row.meta, clip);
    }
    row.checkbox.checked = checked.has(item.id);
    row.checkbox.setAttribute("aria-label", "Tick for a bulk action: " + contactOf(item) + ": " + excerpt(item.message, 60));
  }

  function statusBadge(status) {
    var resolved = status === "resolved";
    return h("span", { class: resolved ? "badge resolved" : "badge" }, resolved ? "Resolved" : "Unresolved");
  }

  function renderCounts(hits, maxHits) {
    var element = $("hits");
    if (hits === null || hits === undefined || hits === "") {
      element.textContent = "";
      return;
    }
    var capped = maxHits && hits === maxHits;
    element.textContent = (capped ? hits + "+" : hits) + " feedback";
  }

  function updatePager() {
    var previous = links.previous && links.previous.results && state.cursor;
    $("prev-page").disabled = !previous;
    $("next-page").disabled = !(links.next && links.next.results);
    $("page-info").textContent = state.cursor ? "" : items.length ? "First page" : "";
  }

  function updateEmpty() {
    var empty = items.length === 0 && !loadingError();
    var filtered = Boolean(state.query || state.status || state.environment || state.cursor);
    $("empty").hidden = !(empty && !filtered);
    $("no-match").hidden = !(empty && filtered) || !$("search-error").hidden;
    if (empty && !filtered) showEmptyHint();
  }

  function loadingError() {
    return !$("search-error").hidden;
  }

  function showEmptyHint() {
    $("empty-period").textContent = PERIOD_TEXT[state.statsPeriod] || "in this period";
    var project = state.project || (projects.length ? projects[0].slug : "");
    if (!project || !org) return;
    var show = function (dsn) {
      $("empty-dsn").textContent = dsn;
      $("empty-command").textContent = 'sentry-feedback send "It works" --dsn ' + dsn;
    };
    if (dsnCache.has(project)) {
      show(dsnCache.get(project));
      return;
    }
    apiJson("/api/0/projects/" + enc(org) + "/" + enc(project) + "/keys/")
      .then(function (keys) {
        var key = Array.isArray(keys)
          ? keys.filter(function (k) { return k && k.isActive !== false && k.dsn && typeof k.dsn.public === "string"; })[0]
          : null;
        if (!key) throw new ApiError(404, "this project has no active key");
        dsnCache.set(project, key.dsn.public);
        show(key.dsn.public);
      })
      .catch(function (error) {
        if (error.status === 401) return;
        $("empty-dsn").textContent = "(the DSN that sentry-feedback serve printed)";
        $("empty-command").textContent = 'sentry-feedback send "It works" --dsn <DSN>';
      });
  }

  // -- selection ---------------------------------------------------------------------------------------------

  function updateSelectionMarks() {
    rows.forEach(function (row, id) {
      var selected = id === state.id;
      row.li.classList.toggle("selected", selected);
      if (selected) row.button.setAttribute("aria-current", "true");
      else row.button.removeAttribute("aria-current");
    });
  }

  function select(id, options) {
    options = options || {};
    var row = rows.get(id);
    var changed = state.id !== id || !current || current.id !== id;
    state.id = id;
    writeState(false);
    updateSelectionMarks();
    if (row) {
      if (options.focus) row.button.focus();
      row.button.scrollIntoView({ block: "nearest" });
      if (changed) showDetail(row.item);
    } else if (changed) {
      loadSelected();
    }
  }

  function moveSelection(delta) {
    if (!items.length) return;
    var index = -1;
    for (var i = 0; i < items.length; i++) {
      if (items[i].id === state.id) index = i;
    }
    var target;
    if (index < 0) target = delta > 0 ? 0 : items.length - 1;
    else target = Math.min(items.length - 1, Math.max(0, index + delta));
    select(items[target].id, { focus: true });
  }

  function onRowKeydown(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowDown") moveSelection(1);
    else if (event.key === "ArrowUp") moveSelection(-1);
    else if (event.key === "Home" && items.length) select(items[0].id, { focus: true });
    else if (event.key === "End" && items.length) select(items[items.length - 1].id, { focus: true });
    else return;
    event.preventDefault();
    event.stopPropagation();
  }

  /* After a list load: show the selected feedback, from the list or fetched on its own. */
  function syncDetail() {
    if (!state.id) {
      if (current) clearDetail();
      return;
    }
    var row = rows.get(state.id);
    if (row) {
      if (!current || current.id !== state.id) showDetail(row.item);
      else if (current.status !== row.item.status) updateDetailStatus(Object.assign({}, current, row.item));
      return;
    }
    if (!current || current.id !== state.id) loadSelected();
  }

  /* The selected feedback is not on this page: find its project and fetch it. */
  function loadSelected() {
    var id = state.id;
    var request = ++detailRequest;
    apiJson("/api/0/organizations/" + enc(org) + "/eventids/" + enc(id) + "/")
      .then(function (found) {
        var project = found && typeof found.projectSlug === "string" ? found.projectSlug : projectOf(null);
        return apiJson(itemPath({ id: id, project: project }));
      })
      .then(function (answer) {
        if (request !== detailRequest || state.id !== id) return;
        if (!answer || !answer.data) throw new ApiError(404, "not found");
        showDetail(answer.data);
      })
      .catch(function (error) {
        if (request !== detailRequest || state.id !== id || error.status === 401) return;
        showMissing(error.status === 404
          ? "The feedback " + id + " was not found: it may have been deleted."
          : describe("Loading the feedback " + id, error));
      });
  }

  // -- the detail --------------------------------------------------------------------------------------------

  function clearDetail() {
    current = null;
    detailRequest++;
    $("detail-body").hidden = true;
    $("detail-missing").hidden = true;
    $("detail-placeholder").hidden = false;
  }

  function showMissing(message) {
    current = null;
    $("detail-body").hidden = true;
    $("detail-placeholder").hidden = true;
    $("detail-missing").textContent = message;
    $("detail-missing").hidden = false;
  }

  function field(list, label, value) {
    if (value === null || value === undefined || value === "") return;
    if (Array.isArray(value) && !value.length) return;
    append(list, [h("dt", null, label), h("dd", null, typeof value === "object" && value.nodeType ? value : text(value))]);
  }

  function joined(values, separator) {
    return values.filter(function (v) { return v !== null && v !== undefined && v !== ""; }).map(text).join(separator || " ");
  }

  function showDetail(item) {
    var request = ++detailRequest;
    current = item;
    $("detail-placeholder").hidden = true;
    $("detail-missing").hidden = true;
    $("detail-body").hidden = false;

    var user = item.user || {};
    var name = item.name || user.display_name;
    $("detail-title").textContent = "Feedback from " + text(name || item.contact_email || user.email || "an anonymous user");
    updateDetailStatus(item);
    setTime($("detail-time"), item.timestamp);
    $("detail-time").textContent = absoluteTime(item.timestamp) + " (" + relativeTime(item.timestamp) + ")";
    $("detail-project").textContent = item.project ? "Project: " + text(item.project) : "";
    $("detail-project").hidden = !item.project;
    $("detail-environment").textContent = item.environment ? "Environment: " + text(item.environment) : "";
    $("detail-environment").hidden = !item.environment;
    $("detail-message").textContent = text(item.message);

    var fields = $("detail-fields");
    clear(fields);
    field(fields, "Contact name", name);
    field(fields, "Contact email", item.contact_email);
    if (item.url) field(fields, "URL", urlNode(item.url));
    field(fields, "Release", joined([item.release, item.dist ? "(dist " + text(item.dist) + ")" : ""]));
    field(fields, "Environment", item.environment);
    field(fields, "Project", item.project || item.project_id);
    field(fields, "User", joined([
      user.display_name,
      user.email,
      user.id ? "id " + text(user.id) : "",
      user.username ? "username " + text(user.username) : "",
      user.ip ? "ip " + text(user.ip) : "",
    ], " \u00b7 "));
    var browser = item.browser || {};
    var os = item.os || {};
    var device = item.device || {};
    var locale = item.locale || {};
    var sdk = item.sdk || {};
    field(fields, "Browser", joined([browser.name, browser.version]));
    field(fields, "OS", joined([os.name, os.version]));
    field(fields, "Device", joined([device.brand, device.model, device.name, device.family ? "(" + text(device.family) + ")" : ""]));
    field(fields, "Locale", joined([locale.lang, locale.timezone], " \u00b7 "));
    field(fields, "Platform", item.platform);
    field(fields, "SDK", joined([sdk.name, sdk.version]));
    if (Array.isArray(item.trace_ids) && item.trace_ids.length) {
      field(fields, "Trace id", h("code", null, text(item.trace_ids[0])));
    }
    if (item.replay_id) field(fields, "Replay id", h("code", null, text(item.replay_id)));
    if (Array.isArray(item.error_ids) && item.error_ids.length) {
      field(fields, "Linked error id", h("code", null, text(item.error_ids[0])));
    }
    field(fields, "Feedback id", h("code", null, text(item.id)));

    renderTags(item.tags);
    renderAttachments(item, request);
    renderLinkedError(item, request);
    renderTrace(item, request);
  }

  function updateDetailStatus(item) {
    current = item;
    var badge = $("detail-status");
    var resolved = item.status === "resolved";
    badge.textContent = resolved ? "Resolved" : "Unresolved";
    badge.className = resolved ? "badge resolved" : "badge";
    $("detail-resolve").textContent = resolved ? "Unresolve" : "Resolve";
  }

  function renderTags(tags) {
    var list = $("detail-tags");
    clear(list);
    var keys = tags && typeof tags === "object" && !Array.isArray(tags) ? Object.keys(tags).sort() : [];
    $("detail-tags-section").hidden = keys.length === 0;
    keys.forEach(function (key) {
      var value = tags[key];
      var shown = Array.isArray(value) ? value.map(text).join(", ") : text(value);
      append(list, h("li", { class: "tag" }, h("span", { class: "tag-key" }, key), h("span", { class: "tag-value" }, shown)));
    });
  }

  function renderAttachments(item, request) {
    var section = $("detail-attachments-section");
    var box = $("detail-attachments");
    clear(box);
    if (item.attachment_count === 0) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    append(box, h("p", { class: "hint" }, "Loading the attachments\u2026"));
    var base = itemPath(item) + "attachments/";
    apiJson(base)
      .then(function (answer) {
        if (request !== detailRequest) return;
        clear(box);
        var attachments = answer && Array.isArray(answer.data) ? answer.data : [];
        if (!attachments.length) {
          section.hidden = true;
          return;
        }
        attachments.forEach(function (attachment) {
          if (!attachment || attachment.id === null || attachment.id === undefined) return;
          var url = base + enc(attachment.id) + "/";
          var name = text(attachment.name || "attachment");
          var type = typeof attachment.mimetype === "string" ? attachment.mimetype.toLowerCase() : "";
          var size = formatSize(attachment.size);
          if (IMAGE_TYPES.indexOf(type) >= 0) {
            var image = h("img", { src: url, alt: name });
            var link = h("a", { href: url, download: name }, "Download");
            append(box, h("figure", { class: "attachment-image" },
              image,
              h("figcaption", null, name, " ", h("span", { class: "size" }, size), " \u00b7 ", link)));
          } else {
            append(box, h("p", { class: "attachment-file" },
              h("a", { href: url, download: name }, name),
              h("span", { class: "size" }, joined([type, size], " \u00b7 "))));
          }
        });
      })
      .catch(function (error) {
        if (request !== detailRequest) return;
        clear(box);
        append(box, h("p", { class: "hint" }, describe("Loading the attachments", error)));
      });
  }

  function renderLinkedError(item, request) {
    var section = $("detail-error-section");
    var box = $("detail-error");
    clear(box);
    var errorId = Array.isArray(item.error_ids) && item.error_ids.length ? item.error_ids[0] : null;
    section.hidden = !errorId;
    if (!errorId) return;
    append(box, h("p", { class: "hint" }, "Loading the linked error\u2026"));
    apiJson("/api/0/projects/" + enc(org) + "/" + enc(projectOf(item)) + "/events/" + enc(errorId) + "/")
      .then(function (event) {
        if (request !== detailRequest) return;
        clear(box);
        renderEvent(box, event || {});
      })
      .catch(function (error) {
        if (request !== detailRequest) return;
        clear(box);
        append(box, h("p", { class: "hint" }, error.status === 404
          ? "The linked error " + text(errorId) + " is not stored on this server."
          : describe("Loading the linked error", error)));
      });
  }

  function renderEvent(box, event) {
    var metadata = event.metadata || {};
    var title = metadata.type
      ? [h("span", { class: "error-type" }, text(metadata.type)), metadata.value ? ": " + text(metadata.value) : ""]
      : text(event.title || event.message || "(untitled event)");
    append(box, h("h5", { class: "error-title" }, title));
    append(box, h("p", { class: "error-meta" }, joined([
      event.level ? text(event.level) : "",
      event.dateCreated ? absoluteTime(event.dateCreated) : "",
      event.platform ? text(event.platform) : "",
      event.release ? "release " + text(event.release) : "",
    ], " \u00b7 ")));
    var entries = Array.isArray(event.entries) ? event.entries : [];
    var exception = entries.filter(function (e) { return e && e.type === "exception"; })[0];
    var values = exception && exception.data && Array.isArray(exception.data.values) ? exception.data.values : [];
    // Sentry's order is the cause first; the exception that was raised last is shown first.
    values.slice().reverse().forEach(function (value, index) {
      if (value && typeof value === "object") box.appendChild(renderException(value, index === 0, values.length));
    });
    if (!values.length) {
      var message = entries.filter(function (e) { return e && e.type === "message"; })[0];
      if (message && message.data) append(box, h("p", { class: "message" }, text(message.data.formatted || message.data.message)));
    }
    var crumbs = entries.filter(function (e) { return e && e.type === "breadcrumbs"; })[0];
    var list = crumbs && crumbs.data && Array.isArray(crumbs.data.values) ? crumbs.data.values : [];
    if (list.length) {
      var ol = h("ol");
      list.slice(-30).forEach(function (crumb) {
        if (!crumb || typeof crumb !== "object") return;
        append(ol, h("li", null, joined([crumb.category ? "[" + text(crumb.category) + "]" : "", crumb.message, crumb.level])));
      });
      append(box, h("details", { class: "breadcrumbs" }, h("summary", null, "Breadcrumbs (" + list.length + ")"), ol));
    }
  }

  function renderException(value, latest, count) {
    var wrapper = h("div", { class: "exception" });
    if (count > 1) {
      append(wrapper, h("h5", null, (latest ? "Raised: " : "Caused by / during: ") + joined([value.type, value.value], ": ")));
    }
    var stack = value.stacktrace && Array.isArray(value.stacktrace.frames) ? value.stacktrace.frames : [];
    if (!stack.length) {
      append(wrapper, h("p", { class: "hint" }, "No stack trace."));
      return wrapper;
    }
    var frames = stack.filter(function (f) { return f && typeof f === "object"; }).reverse(); // newest first
    var anyInApp = frames.some(function (f) { return f.in_app === true; });
    var list = h("ol", { class: "frames", "aria-label": "Stack trace, newest frame first" });
    frames.forEach(function (frame, index) {
      var open = anyInApp ? frame.in_app === true : index === 0;
      list.appendChild(renderFrame(frame, open && latest));
    });
    append(wrapper, list);
    return wrapper;
  }

  function renderFrame(frame, open) {
    var file = frame.filename || frame.abs_path || frame.module || "?";
    var line = typeof frame.lineno === "number" && isFinite(frame.lineno) ? Math.floor(frame.lineno) : null;
    var summary = h("summary", null,
      h("span", { class: "frame-function" }, text(frame.function || "<unknown>")),
      " in ",
      h("span", { class: "frame-file" }, text(file) + (line !== null ? ":" + line : "")),
      frame.in_app === true ? h("span", { class: "frame-badge" }, "in app") : null);
    var details = h("details", { open: open }, summary);
    var pre = Array.isArray(frame.pre_context) ? frame.pre_context : [];
    var post = Array.isArray(frame.post_context) ? frame.post_context : [];
    var hasLine = typeof frame.context_line === "string";
    if (hasLine || pre.length || post.length) {
      var source = h("div", { class: "source", role: "group", "aria-label": "Source around line " + (line !== null ? line : "?") });
      var first = line !== null ? line - pre.length : null;
      pre.forEach(function (code, i) {
        source.appendChild(sourceLine(first !== null ? first + i : "", code, false));
      });
      if (hasLine) source.appendChild(sourceLine(line !== null ? line : "", frame.context_line, true));
      post.forEach(function (code, i) {
        source.appendChild(sourceLine(line !== null ? line + 1 + i : "", code, false));
      });
      append(details, source);
    }
    if (frame.vars && typeof frame.vars === "object" && !Array.isArray(frame.vars)) {
      var names = Object.keys(frame.vars);
      if (names.length) {
        var dl = h("dl", { class: "fields" });
        names.forEach(function (key) {
          append(dl, [h("dt", null, key), h("dd", null, text(frame.vars[key]))]);
        });
        append(details, h("details", { class: "vars" }, h("summary", null, "Local variables (" + names.length + ")"), dl));
      }
    }
    return h("li", { class: frame.in_app === true ? "frame in-app" : "frame" }, details);
  }

  function sourceLine(number, code, currentLine) {
    var line = h("div", { class: currentLine ? "source-line current" : "source-line" },
      h("span", { class: "lineno", "aria-hidden": "true" }, String(number)),
      h("code", { class: "code" }, text(code)));
    if (currentLine) line.setAttribute("aria-current", "true");
    return line;
  }

  // -- the trace -----------------------------------------------------------------------------------------------

  /* The trace panel: the transactions the server stored for the feedback's trace, with their spans, each under
     the span it belongs to and siblings in start order, as a waterfall. The span the feedback was sent in is
     highlighted and the feedback's time is marked. Nothing is shown when no transaction of the trace is stored. */
  function renderTrace(item, request) {
    var section = $("detail-trace-section");
    var box = $("detail-trace");
    clear(box);
    section.hidden = true;
    box.removeAttribute("aria-busy");
    if (!Array.isArray(item.trace_ids) || !item.trace_ids.length) return;
    box.setAttribute("aria-busy", "true");
    apiJson(itemPath(item) + "trace/")
      .then(function (trace) {
        if (request !== detailRequest) return;
        box.removeAttribute("aria-busy");
        var nodes = traceNodes(trace && Array.isArray(trace.transactions) ? trace.transactions : []);
        if (!nodes.length) return;
        renderWaterfall(box, trace, nodes);
        section.hidden = false;
      })
      .catch(function (error) {
        if (request !== detailRequest) return;
        box.removeAttribute("aria-busy");
        if (error.status === 401 || error.status === 404) return;
        append(box, h("p", { class: "hint" }, describe("Loading the trace", error)));
        section.hidden = false;
      });
  }

  function finite(value) {
    return typeof value === "number" && isFinite(value);
  }

  function spanId(value) {
    return typeof value === "string" && value ? value : null;
  }

  /* One node per transaction and span with valid times: {kind, id, parent, op, name, status, start, end, ms}.
     A span without a parent belongs to its transaction. */
  function traceNodes(transactions) {
    var nodes = [];
    transactions.forEach(function (transaction) {
      if (!transaction || typeof transaction !== "object") return;
      var root = spanId(transaction.span_id);
      if (finite(transaction.start_timestamp) && finite(transaction.timestamp)) {
        nodes.push({
          kind: "transaction", id: root, parent: spanId(transaction.parent_span_id), op: transaction.op,
          name: transaction.transaction, status: transaction.status, start: transaction.start_timestamp,
          end: transaction.timestamp, ms: transaction.duration,
        });
      }
      (Array.isArray(transaction.spans) ? transaction.spans : []).forEach(function (span) {
        if (!span || typeof span !== "object" || !finite(span.start_timestamp) || !finite(span.timestamp)) return;
        nodes.push({
          kind: "span", id: spanId(span.span_id), parent: spanId(span.parent_span_id) || root, op: span.op,
          name: span.description, status: span.status, start: span.start_timestamp, end: span.timestamp,
          ms: span.duration,
        });
      });
    });
    return nodes;
  }

  /* The nodes depth first, each after its parent, siblings by start time: [{node, depth}]. A parent that is not
     stored makes a node a root; a loop of parents (which no SDK sends) is cut where it is first met. */
  function traceOrder(nodes) {
    var byId = new Map();
    nodes.forEach(function (node) {
      if (node.id && !byId.has(node.id)) byId.set(node.id, node);
    });
    var children = new Map();
    var roots = [];
    nodes.forEach(function (node) {
      var parent = node.parent && node.parent !== node.id ? byId.get(node.parent) : undefined;
      if (!parent) {
        roots.push(node);
        return;
      }
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(node);
    });
    var byStart = function (a, b) { return a.start - b.start; };
    var ordered = [];
    var seen = new Set();
    function walk(first) {
      var stack = [{ node: first, depth: 0 }];
      while (stack.length) {
        var top = stack.pop();
        if (seen.has(top.node)) continue;
        seen.add(top.node);
        ordered.push(top);
        var below = (children.get(top.node) || []).slice().sort(byStart);
        for (var i = below.length - 1; i >= 0; i--) stack.push({ node: below[i], depth: top.depth + 1 });
      }
    }
    roots.sort(byStart).forEach(walk);
    nodes.slice().sort(byStart).forEach(function (node) {
      if (!seen.has(node)) walk(node);
    });
    return ordered;
  }

  function formatMs(ms) {
    if (!finite(ms)) return "";
    var rounded = Math.abs(ms) >= 100 ? Math.round(ms) : Math.round(ms * 10) / 10;
    return String(rounded) + " ms";
  }

  var MAX_TRACE_ROWS = 2000;

  function renderWaterfall(box, trace, nodes) {
    var feedbackAt = finite(trace.timestamp) ? trace.timestamp : null;
    // The span the feedback was sent in: its own span, else the span it was called from.
    var here = null;
    [spanId(trace.span_id), spanId(trace.parent_span_id)].forEach(function (id) {
      if (!here && id) here = nodes.filter(function (node) { return node.id === id; })[0] || null;
    });
    var start = Infinity;
    var end = -Infinity;
    nodes.forEach(function (node) {
      start = Math.min(start, node.start);
      end = Math.max(end, node.end);
    });
    var length = end - start;
    if (feedbackAt !== null) {
      // A feedback sent a little before or after the trace widens the scale; one sent long after does not.
      var room = Math.max(length, 0.001);
      if (feedbackAt < start && start - feedbackAt <= room) start = feedbackAt;
      if (feedbackAt > end && feedbackAt - end <= room) end = feedbackAt;
      length = end - start;
    }
    var marked = feedbackAt !== null && feedbackAt >= start && feedbackAt <= end;
    var scale = function (time) {
      var share = length > 0 && isFinite(length) ? ((time - start) / length) * 100 : 0;
      return Math.min(100, Math.max(0, share));
    };

    var transactionCount = nodes.filter(function (node) { return node.kind === "transaction"; }).length;
    var summary = [
      transactionCount + (transactionCount === 1 ? " transaction" : " transactions"),
      (nodes.length - transactionCount) + (nodes.length - transactionCount === 1 ? " span" : " spans"),
      formatMs(length * 1000),
    ];
    append(box, h("p", { class: "trace-summary" }, "Trace ", h("code", null, text(trace.trace_id)), " \u00b7 ",
      summary.filter(Boolean).join(" \u00b7 ")));
    if (feedbackAt !== null) {
      var when = feedbackAt < start ? formatMs((start - feedbackAt) * 1000) + " before the trace started"
        : feedbackAt > end ? formatMs((feedbackAt - end) * 1000) + " after the trace ended"
        : "at +" + formatMs((feedbackAt - start) * 1000) + " into the trace";
      append(box, h("p", { class: "trace-note" }, h("span", { class: "trace-key", "aria-hidden": "true" }),
        "The feedback was sent " + when + (here ? ", in the highlighted span." : ".")));
    }

    var ordered = traceOrder(nodes);
    if (feedbackAt !== null) {
      // The feedback itself, as a row under its span at its time.
      var feedbackNode = { kind: "feedback", start: feedbackAt, end: feedbackAt };
      var at = ordered.length;
      var depth = 0;
      if (here) {
        var index = ordered.findIndex(function (entry) { return entry.node === here; });
        depth = ordered[index].depth + 1;
        // Among the span's children by time: before the first that starts after it.
        for (at = index + 1; at < ordered.length && ordered[at].depth >= depth; at++) {
          if (ordered[at].depth === depth && ordered[at].node.start > feedbackAt) break;
        }
      } else {
        at = ordered.findIndex(function (entry) { return entry.depth === 0 && entry.node.start > feedbackAt; });
        if (at < 0) at = ordered.length;
      }
      ordered.splice(at, 0, { node: feedbackNode, depth: depth });
    }

    var list = h("ol", { class: "trace-rows", "aria-label": "Transactions and spans, each under its parent, in start order" });
    ordered.slice(0, MAX_TRACE_ROWS).forEach(function (entry) {
      list.appendChild(traceRow(entry.node, entry.depth, entry.node === here, scale, marked ? scale(feedbackAt) : null,
        start));
    });
    append(box, list);
    if (ordered.length > MAX_TRACE_ROWS) {
      append(box, h("p", { class: "hint" }, (ordered.length - MAX_TRACE_ROWS) + " more spans are not shown."));
    }
    if (trace.truncated) {
      append(box, h("p", { class: "hint" }, "The server holds more of this trace than it sends at once; the rest is not shown."));
    }
  }

  function traceRow(node, depth, current, scale, mark, start) {
    var feedback = node.kind === "feedback";
    var status = typeof node.status === "string" && node.status ? node.status : null;
    var label = h("div", { class: "trace-label" },
      h("span", { class: "trace-op" }, feedback ? "feedback" : text(node.op || node.kind)),
      " ",
      h("span", { class: "trace-name" }, feedback ? "sent" : text(node.name || "")),
      status ? h("span", { class: status === "ok" ? "trace-status" : "trace-status bad" }, status) : null,
      current ? h("span", { class: "trace-here" }, "feedback sent here") : null);
    label.style.setProperty("--depth", String(Math.min(depth, 24)));
    var duration = h("span", { class: "trace-duration" },
      feedback ? "+" + formatMs((node.start - start) * 1000) : formatMs(node.ms));
    var bar = h("span", { class: "trace-bar" });
    bar.style.left = scale(node.start) + "%";
    bar.style.width = Math.max(0, scale(node.end) - scale(node.start)) + "%";
    var timeline = h("div", { class: "trace-timeline", "aria-hidden": "true" }, bar);
    if (mark !== null) {
      var tick = h("span", { class: "trace-mark" });
      tick.style.left = mark + "%";
      timeline.appendChild(tick);
    }
    var classes = "trace-row trace-" + node.kind + (current ? " current" : "");
    var row = h("li", { class: classes, "data-span-id": node.id || null }, label, duration, timeline);
    if (current) row.setAttribute("aria-current", "true");
    if (!feedback && node.name) row.setAttribute("title", text(node.name));
    return row;
  }

  // -- triage --------------------------------------------------------------------------------------------------

  /* Run `task` for every item, four at a time; [{item, ok, value|error}] in the items' order. */
  function runAll(targets, task) {
    var results = new Array(targets.length);
    var next = 0;
    function worker() {
      if (next >= targets.length) return Promise.resolve();
      var index = next++;
      var item = targets[index];
      return task(item)
        .then(function (value) {
          results[index] = { item: item, ok: true, value: value };
        }, function (error) {
          results[index] = { item: item, ok: false, error: error };
        })
        .then(worker);
    }
    var workers = [];
    for (var i = 0; i < Math.min(4, targets.length); i++) workers.push(worker());
    return Promise.all(workers).then(function () {
      return results;
    });
  }

  function failureMessage(action, results) {
    var failed = results.filter(function (r) { return !r.ok; });
    if (!failed.length) return null;
    var first = describe(action, failed[0].error);
    if (results.length === 1) return first;
    return failed.length + " of " + results.length + " failed. " + first;
  }

  function setStatus(targets, status) {
    if (!targets.length) return Promise.resolve();
    var verb = status === "resolved" ? "Resolving" : "Unresolving";
    mutating++;
    hideError();
    return runAll(targets, function (item) {
      return apiJson(itemPath(item), { method: "PATCH", json: { data: { status: status } } });
    }).then(function (results) {
      mutating--;
      var done = 0;
      results.forEach(function (result) {
        if (!result.ok) return;
        done++;
        var updated = Object.assign({}, result.item, result.value && result.value.data ? result.value.data : {}, { status: status });
        replaceItem(updated);
      });
      var failure = failureMessage(verb, results);
      if (failure) showError(failure);
      if (done) {
        var past = status === "resolved" ? "Resolved " : "Unresolved ";
        announce(past + (done === 1 ? "1 feedback." : done + " feedback."));
      }
      if (done && state.status) return loadList({ quiet: true });
    });
  }

  function replaceItem(updated) {
    items = items.map(function (item) {
      return item.id === updated.id ? updated : item;
    });
    var row = rows.get(updated.id);
    if (row) updateRow(row, updated);
    if (current && current.id === updated.id) updateDetailStatus(Object.assign({}, current, updated));
  }

  function deleteItems(targets) {
    if (!targets.length) return Promise.resolve();
    var one = targets.length === 1;
    var message = one
      ? "Delete the feedback \u201c" + excerpt(targets[0].message, 80) + "\u201d and its attachments? This cannot be undone."
      : "Delete " + targets.length + " feedback and their attachments? This cannot be undone.";
    return confirmDialog(one ? "Delete this feedback?" : "Delete " + targets.length + " feedback?", message,
      one ? "Delete" : "Delete " + targets.length).then(function (confirmed) {
      if (!confirmed) return;
      mutating++;
      hideError();
      var order = items.map(function (item) { return item.id; });
      return runAll(targets, function (item) {
        return apiJson(itemPath(item), { method: "DELETE" });
      }).then(function (results) {
        mutating--;
        var deleted = new Set();
        results.forEach(function (result) {
          if (result.ok || (result.error && result.error.status === 404)) deleted.add(result.item.id);
        });
        if (deleted.size) {
          var selectedGone = state.id && deleted.has(state.id);
          var successor = null;
          if (selectedGone) {
            var at = order.indexOf(state.id);
            var after = order.slice(at + 1).concat(order.slice(0, at).reverse());
            successor = after.filter(function (id) { return !deleted.has(id); })[0] || null;
          }
          deleted.forEach(function (id) { checked.delete(id); });
          renderList(items.filter(function (item) { return !deleted.has(item.id); }));
          if (selectedGone) {
            if (successor) select(successor, { focus: true });
            else {
              state.id = "";
              writeState(false);
              clearDetail();
              $("list").focus();
            }
          }
          announce("Deleted " + (deleted.size === 1 ? "1 feedback." : deleted.size + " feedback."));
        }
        var failure = failureMessage("Deleting", results.filter(function (r) { return !deleted.has(r.item.id) || r.ok; }));
        if (failure) showError(failure);
        return loadList({ quiet: true });
      });
    });
  }

  function tickedItems() {
    return items.filter(function (item) { return checked.has(item.id); });
  }

  function updateBulk() {
    var count = tickedItems().length;
    $("selection-count").textContent = count + " selected";
    $("bulk-resolve").disabled = count === 0;
    $("bulk-unresolve").disabled = count === 0;
    $("bulk-delete").disabled = count === 0;
    var all = $("select-all");
    all.checked = count > 0 && count === items.length;
    all.indeterminate = count > 0 && count < items.length;
    all.disabled = items.length === 0;
  }

  // -- dialogs ---------------------------------------------------------------------------------------------

  function confirmDialog(title, message, confirmLabel) {
    var dialog = $("confirm-dialog");
    var ok = $("confirm-ok");
    var cancel = $("confirm-cancel");
    var returnTo = document.activeElement;
    $("confirm-title").textContent = title;
    $("confirm-message").textContent = message;
    ok.textContent = confirmLabel;
    return new Promise(function (resolve) {
      function finish(value) {
        ok.removeEventListener("click", onOk);
        cancel.removeEventListener("click", onCancel);
        dialog.removeEventListener("cancel", onEscape);
        if (dialog.open) dialog.close();
        if (returnTo && document.body.contains(returnTo) && typeof returnTo.focus === "function") returnTo.focus();
        resolve(value);
      }
      function onOk() { finish(true); }
      function onCancel() { finish(false); }
      function onEscape(event) {
        event.preventDefault();
        finish(false);
      }
      ok.addEventListener("click", onOk);
      cancel.addEventListener("click", onCancel);
      dialog.addEventListener("cancel", onEscape);
      dialog.showModal();
      cancel.focus();
    });
  }

  function openHelp() {
    var dialog = $("help-dialog");
    if (!dialog.open) dialog.showModal();
    $("help-close").focus();
  }

  // -- polling -------------------------------------------------------------------------------------------------

  function schedulePoll() {
    stopPolling();
    if (signedOut) return;
    pollTimer = window.setTimeout(poll, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) window.clearTimeout(pollTimer);
    pollTimer = null;
  }

  function poll() {
    pollTimer = null;
    var due = document.visibilityState === "visible" && !state.cursor && !loading && !mutating && org;
    (due ? loadList({ quiet: true }) : Promise.resolve()).then(schedulePoll, schedulePoll);
  }

  // -- controls and shortcuts --------------------------------------------------------------------------------

  function newView() {
    state.cursor = "";
    checked.clear();
    writeState(true);
    return loadList();
  }

  function bindControls() {
    $("search-form").addEventListener("submit", function (event) {
      event.preventDefault();
      state.query = $("search").value.trim();
      newView();
    });
    [
      ["filter-status", "status"],
      ["filter-project", "project"],
      ["filter-environment", "environment"],
      ["filter-period", "statsPeriod"],
      ["filter-sort", "sort"],
    ].forEach(function (pair) {
      $(pair[0]).addEventListener("change", function (event) {
        state[pair[1]] = event.target.value;
        if (pair[1] === "project" && !$("empty").hidden) showEmptyHint();
        newView();
      });
    });
    $("clear-filters").addEventListener("click", function () {
      state.query = "";
      state.status = "";
      state.project = "";
      state.environment = "";
      applyStateToControls();
      newView();
      $("search").focus();
    });
    $("prev-page").addEventListener("click", function () {
      if (!links.previous || !links.previous.results) return;
      state.cursor = links.previous.cursor;
      checked.clear();
      writeState(true);
      loadList().then(function () { $("list").focus(); });
    });
    $("next-page").addEventListener("click", function () {
      if (!links.next || !links.next.results) return;
      state.cursor = links.next.cursor;
      checked.clear();
      writeState(true);
      loadList().then(function () { $("list").focus(); });
    });
    $("select-all").addEventListener("change", function (event) {
      items.forEach(function (item) {
        if (event.target.checked) checked.add(item.id);
        else checked.delete(item.id);
      });
      rows.forEach(function (row) { row.checkbox.checked = checked.has(row.item.id); });
      updateBulk();
    });
    $("bulk-resolve").addEventListener("click", function () { setStatus(tickedItems(), "resolved"); });
    $("bulk-unresolve").addEventListener("click", function () { setStatus(tickedItems(), "unresolved"); });
    $("bulk-delete").addEventListener("click", function () { deleteItems(tickedItems()); });
    $("detail-resolve").addEventListener("click", function () { toggleResolve(); });
    $("detail-delete").addEventListener("click", function () {
      if (current) deleteItems([current]);
    });
    $("detail-back").addEventListener("click", function () {
      var row = rows.get(state.id);
      if (row) {
        row.button.scrollIntoView();
        row.button.focus();
      } else {
        $("list").focus();
      }
    });
    $("error-close").addEventListener("click", hideError);
    $("help-button").addEventListener("click", openHelp);
    $("help-close").addEventListener("click", function () { $("help-dialog").close(); });
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
      button.addEventListener("click", function () {
        var source = $(button.getAttribute("data-copy"));
        var value = source ? source.textContent : "";
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(value).then(function () { announce("Copied."); }, function () {
            announce("Could not copy: select the text and copy it.");
          });
        }
      });
    });
    window.addEventListener("popstate", function () {
      var before = state.id;
      state = readState();
      checked.clear();
      applyStateToControls();
      loadList();
      if (state.id !== before && !state.id) clearDetail();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !signedOut && org) {
        stopPolling();
        poll();
      }
    });
    document.addEventListener("keydown", onKeydown);
  }

  function toggleResolve() {
    if (!current) return;
    setStatus([current], current.status === "resolved" ? "unresolved" : "resolved");
  }

  function isTyping(element) {
    if (!element) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag !== "INPUT") return false;
    var type = (element.getAttribute("type") || "text").toLowerCase();
    return ["checkbox", "radio", "button", "submit", "reset", "range", "color", "file", "image"].indexOf(type) < 0;
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    if (target === $("search") && event.key === "Escape") {
      event.preventDefault(); // not the search box's own "clear"
      var row = rows.get(state.id);
      if (row) row.button.focus();
      else target.blur();
      return;
    }
    if (isTyping(target)) return;
    if ($("confirm-dialog").open || $("help-dialog").open) return;
    switch (event.key) {
      case "j":
        moveSelection(1);
        break;
      case "k":
        moveSelection(-1);
        break;
      case "r":
        toggleResolve();
        break;
      case "x": {
        var selected = rows.get(state.id);
        if (!selected) return;
        selected.checkbox.checked = !selected.checkbox.checked;
        if (selected.checkbox.checked) checked.add(state.id);
        else checked.delete(state.id);
        updateBulk();
        break;
      }
      case "/":
        $("search").focus();
        $("search").select();
        break;
      case "?":
        openHelp();
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  start();
})();
