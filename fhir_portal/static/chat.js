// The chat, enhanced: a live WebSocket conversation in the "Let's chat" panel, on /chat and
// on the staff chat page; a live staff queue. Every page works without this file.
//
// Nothing is lost when the connection drops or the patient moves to another page: each
// message gets an id and waits in an outbox (sessionStorage) until the server acks it;
// the outbox is resent on every (re)connect and the server stores a message id only once.
// The conversation itself lives on the server (the id in the session), so a new page load
// asks for the history again.
(function () {
  "use strict";
  if (window.portalChatLoaded) { return; }
  window.portalChatLoaded = true;

  var OPEN_KEY = "chat-panel-open";

  function uuid4() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  function safeHref(href) {
    // only links inside the portal: "/path", never "//host" or "javascript:"
    return typeof href === "string" && href.charAt(0) === "/" && href.charAt(1) !== "/" ? href : null;
  }

  function wsUrl(path) {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  function formatTime(iso) {
    if (!iso) { return ""; }
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return ""; }
    try {
      return date.toLocaleString(document.documentElement.lang || undefined,
        { dateStyle: "short", timeStyle: "short" });
    } catch (e) {
      return date.toLocaleString();
    }
  }

  function Room(root) {
    this.root = root;
    this.path = root.getAttribute("data-ws");
    this.csrf = root.getAttribute("data-csrf");
    this.viewer = root.getAttribute("data-viewer") || "patient";
    try { this.labels = JSON.parse(root.getAttribute("data-i18n") || "{}"); } catch (e) { this.labels = {}; }
    this.log = root.querySelector("[data-chat-log]");
    this.scroller = root.querySelector("[data-chat-scroll]");
    this.status = root.querySelector("[data-chat-status]");
    this.form = root.querySelector("[data-chat-form]");
    this.outboxKey = "chat-outbox:" + this.path;
    this.socket = null;
    this.connected = false;
    this.everConnected = false;
    this.attempts = 0;
    this.started = false;
    var nojs = root.querySelectorAll("[data-chat-nojs]");
    for (var i = 0; i < nojs.length; i++) { nojs[i].hidden = true; }
    if (this.form) { this.form.addEventListener("submit", this.onSubmit.bind(this)); }
    if (this.form) {
      var area = this.form.querySelector("textarea");
      if (area) {
        area.addEventListener("keydown", function (event) {
          if (event.key === "Enter" && !event.shiftKey) {
            event.preventDefault();
            this.form.requestSubmit ? this.form.requestSubmit() : this.onSubmit(event);
          }
        }.bind(this));
      }
    }
  }

  Room.prototype.start = function () {
    if (this.started) { return; }
    this.started = true;
    this.renderOutbox();
    this.connect();
  };

  Room.prototype.outbox = function () {
    try { return JSON.parse(window.sessionStorage.getItem(this.outboxKey) || "[]"); } catch (e) { return []; }
  };

  Room.prototype.saveOutbox = function (items) {
    try { window.sessionStorage.setItem(this.outboxKey, JSON.stringify(items)); } catch (e) { /* private mode */ }
  };

  Room.prototype.connect = function () {
    var self = this;
    var socket;
    try {
      socket = new WebSocket(wsUrl(this.path));
    } catch (e) {
      this.retry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "hello", csrf: self.csrf }));
      self.connected = true;
      self.everConnected = true;
      self.attempts = 0;
      self.root.classList.remove("chat-room--offline");
      self.flush();
    });
    socket.addEventListener("message", function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      self.receive(data);
    });
    socket.addEventListener("close", function (event) {
      var was = self.connected;
      self.connected = false;
      self.socket = null;
      if (event.code === 4401 || event.code === 4403) {
        // signed out, or the page's form token expired: reloading the page is the way on
        window.location.reload();
        return;
      }
      if (was) {
        self.root.classList.add("chat-room--offline");
        self.setStatus(self.labels.offline || "");
      }
      self.retry();
    });
  };

  Room.prototype.retry = function () {
    var self = this;
    this.attempts += 1;
    var delay = Math.min(15000, 500 * Math.pow(2, Math.min(this.attempts, 5)));
    window.setTimeout(function () { self.connect(); }, delay);
  };

  Room.prototype.flush = function () {
    if (!this.connected || !this.socket) { return; }
    var items = this.outbox();
    for (var i = 0; i < items.length; i++) {
      this.socket.send(JSON.stringify({ type: "message", id: items[i].id, text: items[i].text }));
    }
  };

  Room.prototype.onSubmit = function (event) {
    var area = this.form.querySelector("textarea");
    var text = area ? area.value.trim() : "";
    if (!this.everConnected && this.attempts >= 3) {
      return; // WebSockets do not get through here: let the form post normally
    }
    event.preventDefault();
    if (!text) { if (area) { area.focus(); } return; }
    var item = { id: uuid4(), text: text };
    var items = this.outbox();
    items.push(item);
    this.saveOutbox(items);
    this.renderPending(item);
    area.value = "";
    area.focus();
    if (this.connected && this.socket) {
      this.socket.send(JSON.stringify({ type: "message", id: item.id, text: item.text }));
    }
  };

  Room.prototype.receive = function (data) {
    if (data.type === "history") {
      this.log.textContent = "";
      for (var i = 0; i < data.messages.length; i++) { this.render(data.messages[i]); }
      this.renderOutbox();
      if (data.text) { this.setStatus(data.text); }
    } else if (data.type === "message") {
      this.render(data.message);
    } else if (data.type === "ack") {
      this.saveOutbox(this.outbox().filter(function (item) { return item.id !== data.id; }));
      if (data.message) { this.render(data.message); }
    } else if (data.type === "status") {
      this.setStatus(data.text);
      this.root.setAttribute("data-status", data.status);
    } else if (data.type === "error") {
      if (!data.retry) {
        this.saveOutbox(this.outbox().filter(function (item) { return item.id !== data.id; }));
        var pending = this.log.querySelector('[data-message-id="' + data.id + '"]');
        if (pending) { pending.remove(); }
      }
      this.setStatus(data.text || "");
    }
  };

  Room.prototype.setStatus = function (text) {
    if (this.status && typeof text === "string") { this.status.textContent = text; }
  };

  Room.prototype.authorLabel = function (message) {
    if (message.author === "patient") {
      return this.viewer === "patient" ? this.labels.you : (message.author_name || this.labels.patient);
    }
    if (message.author === "bot") { return this.labels.bot; }
    if (message.author === "system") { return this.labels.system; }
    return message.author_name;
  };

  Room.prototype.render = function (message) {
    if (!message || !this.log) { return; }
    var existing = null;
    if (message.id) { existing = this.log.querySelector('[data-id="' + CSS.escape(message.id) + '"]'); }
    if (!existing && message.message_id) {
      existing = this.log.querySelector('[data-message-id="' + CSS.escape(message.message_id) + '"]');
    }
    var item = document.createElement("li");
    item.className = "chat-msg chat-msg--" + message.author + (message.urgent ? " chat-msg--urgent" : "");
    if (message.id) { item.setAttribute("data-id", message.id); }
    if (message.message_id) { item.setAttribute("data-message-id", message.message_id); }
    var meta = document.createElement("p");
    meta.className = "chat-msg__meta";
    var author = document.createElement("span");
    author.className = "chat-msg__author";
    author.textContent = this.authorLabel(message) || "";
    meta.appendChild(author);
    if (message.sent) {
      meta.appendChild(document.createTextNode(" "));
      var time = document.createElement("time");
      time.setAttribute("datetime", message.sent);
      time.textContent = formatTime(message.sent);
      meta.appendChild(time);
    } else if (message.pending) {
      meta.appendChild(document.createTextNode(" "));
      var note = document.createElement("span");
      note.className = "chat-msg__pending";
      note.textContent = this.labels.sending || "";
      meta.appendChild(note);
    }
    item.appendChild(meta);
    var text = document.createElement("p");
    text.className = "chat-msg__text";
    text.textContent = message.text || "";
    item.appendChild(text);
    var links = (message.links || []).filter(function (link) { return safeHref(link.href); });
    if (links.length) {
      var list = document.createElement("ul");
      list.className = "chat-msg__links";
      links.forEach(function (link) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = safeHref(link.href);
        a.textContent = link.label;
        li.appendChild(a);
        list.appendChild(li);
      });
      item.appendChild(list);
    }
    if (existing) {
      if (existing.getAttribute("data-id") && !message.id) { return; }
      existing.replaceWith(item);
    } else {
      this.log.appendChild(item);
    }
    if (this.scroller) { this.scroller.scrollTop = this.scroller.scrollHeight; }
  };

  Room.prototype.renderPending = function (item) {
    this.render({ id: null, message_id: item.id, author: this.viewer === "patient" ? "patient" : "staff",
      author_name: this.labels.you, text: item.text, links: [], sent: null, pending: true });
  };

  Room.prototype.renderOutbox = function () {
    var items = this.outbox();
    for (var i = 0; i < items.length; i++) { this.renderPending(items[i]); }
  };

  // -- the "Let's chat" panel ---------------------------------------------------------------
  function setupPanel(toggle, panel, room) {
    function open(focus) {
      panel.hidden = false;
      toggle.setAttribute("aria-expanded", "true");
      try { window.sessionStorage.setItem(OPEN_KEY, "1"); } catch (e) { /* ignore */ }
      room.start();
      if (focus) {
        var area = panel.querySelector("textarea");
        if (area) { area.focus(); }
      }
    }
    function close() {
      panel.hidden = true;
      toggle.setAttribute("aria-expanded", "false");
      try { window.sessionStorage.removeItem(OPEN_KEY); } catch (e) { /* ignore */ }
      toggle.focus();
    }
    toggle.setAttribute("role", "button");
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", function (event) {
      event.preventDefault();
      if (panel.hidden) { open(true); } else { close(); }
    });
    toggle.addEventListener("keydown", function (event) {
      if (event.key === " ") { event.preventDefault(); toggle.click(); }
    });
    var closer = panel.querySelector("[data-chat-close]");
    if (closer) { closer.addEventListener("click", close); }
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { close(); }
    });
    var wasOpen = false;
    try { wasOpen = window.sessionStorage.getItem(OPEN_KEY) === "1"; } catch (e) { /* ignore */ }
    var pending = false;
    try { pending = JSON.parse(window.sessionStorage.getItem(room.outboxKey) || "[]").length > 0; } catch (e) { /* ignore */ }
    if (wasOpen || pending) { open(false); }
  }

  // -- the staff queue ------------------------------------------------------------------------
  function setupQueue(root) {
    var path = root.getAttribute("data-ws");
    var csrf = root.getAttribute("data-csrf");
    var attempts = 0;
    function reload() {
      window.fetch(window.location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("chat-queue");
          if (fresh) {
            var current = document.getElementById("chat-queue");
            var focusedId = document.activeElement && document.activeElement.closest &&
              document.activeElement.closest("#chat-queue") ? true : false;
            while (current.firstChild) { current.removeChild(current.firstChild); }
            while (fresh.firstChild) { current.appendChild(document.adoptNode(fresh.firstChild)); }
            if (focusedId) { current.focus(); }
          }
        })
        .catch(function () { /* the next event or poll tries again */ });
    }
    function connect() {
      var socket = new WebSocket(wsUrl(path));
      socket.addEventListener("open", function () {
        attempts = 0;
        socket.send(JSON.stringify({ type: "hello", csrf: csrf }));
      });
      socket.addEventListener("message", function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        if (data.type === "queue") { reload(); }
      });
      socket.addEventListener("close", function () {
        attempts += 1;
        window.setTimeout(function () { reload(); connect(); }, Math.min(15000, 500 * Math.pow(2, Math.min(attempts, 5))));
      });
    }
    connect();
    window.setInterval(reload, 30000); // a safety net if an event was missed
  }

  function init() {
    var rooms = document.querySelectorAll("[data-chat-room]");
    for (var i = 0; i < rooms.length; i++) {
      var root = rooms[i];
      if (!window.WebSocket || !root.getAttribute("data-ws")) { continue; }
      var room = new Room(root);
      if (root.hasAttribute("data-lazy")) {
        var toggle = document.querySelector("[data-chat-toggle]");
        if (toggle) { setupPanel(toggle, root, room); }
      } else {
        room.start();
      }
    }
    var queue = document.querySelector("[data-chat-queue]");
    if (queue && window.WebSocket) { setupQueue(queue); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
