// Gatehouse asciicast v2 player: replays a recording into a <pre> with a small terminal
// model (printable text, CR/LF/BS/TAB, cursor moves, erase in line/display). Colours and
// other attributes are dropped. No dependencies, no network beyond the .cast file.
(function () {
  "use strict";
  var pre = document.getElementById("term");
  if (!pre) return;
  var clock = document.getElementById("clock");

  function Screen(cols, rows) {
    this.cols = cols; this.rows = rows; this.x = 0; this.y = 0;
    this.lines = [];
    for (var i = 0; i < rows; i++) this.lines.push(this.blank());
    this.state = 0; this.params = "";
  }
  Screen.prototype.blank = function () { return new Array(this.cols + 1).join(" ").split(""); };
  Screen.prototype.scroll = function () { this.lines.shift(); this.lines.push(this.blank()); };
  Screen.prototype.newline = function () { if (this.y === this.rows - 1) this.scroll(); else this.y++; };
  Screen.prototype.put = function (ch) {
    if (this.x >= this.cols) { this.x = 0; this.newline(); }
    this.lines[this.y][this.x] = ch; this.x++;
  };
  Screen.prototype.csi = function (final, params) {
    var p = params.replace(/^[?>]/, "").split(";").map(function (v) { return parseInt(v, 10); });
    var n = isNaN(p[0]) || p[0] === 0 ? 1 : p[0];
    var i;
    switch (final) {
      case "A": this.y = Math.max(0, this.y - n); break;
      case "B": this.y = Math.min(this.rows - 1, this.y + n); break;
      case "C": this.x = Math.min(this.cols - 1, this.x + n); break;
      case "D": this.x = Math.max(0, this.x - n); break;
      case "G": this.x = Math.min(this.cols - 1, n - 1); break;
      case "d": this.y = Math.min(this.rows - 1, n - 1); break;
      case "H": case "f":
        this.y = Math.min(this.rows - 1, (isNaN(p[0]) || p[0] === 0 ? 1 : p[0]) - 1);
        this.x = Math.min(this.cols - 1, (isNaN(p[1]) || p[1] === 0 ? 1 : p[1]) - 1);
        break;
      case "K":
        var mode = isNaN(p[0]) ? 0 : p[0];
        for (i = 0; i < this.cols; i++) {
          if ((mode === 0 && i >= this.x) || (mode === 1 && i <= this.x) || mode === 2) this.lines[this.y][i] = " ";
        }
        break;
      case "J":
        var m = isNaN(p[0]) ? 0 : p[0];
        for (var r = 0; r < this.rows; r++) {
          if ((m === 0 && r > this.y) || (m === 1 && r < this.y) || m >= 2) this.lines[r] = this.blank();
        }
        if (m === 0) for (i = this.x; i < this.cols; i++) this.lines[this.y][i] = " ";
        if (m === 1) for (i = 0; i <= this.x; i++) this.lines[this.y][i] = " ";
        break;
      default: break; // SGR (m) and modes (h/l) change no text.
    }
  };
  Screen.prototype.write = function (text) {
    for (var k = 0; k < text.length; k++) {
      var ch = text[k];
      if (this.state === 1) { // after ESC
        if (ch === "[") { this.state = 2; this.params = ""; }
        else if (ch === "]") { this.state = 3; }
        else { this.state = 0; }
        continue;
      }
      if (this.state === 2) { // CSI parameters
        if (ch >= "@" && ch <= "~") { this.csi(ch, this.params); this.state = 0; }
        else { this.params += ch; }
        continue;
      }
      if (this.state === 3) { // OSC, ends with BEL or ESC \
        if (ch === "\u0007") this.state = 0;
        else if (ch === "\u001b") this.state = 1;
        continue;
      }
      switch (ch) {
        case "\u001b": this.state = 1; break;
        case "\r": this.x = 0; break;
        case "\n": this.newline(); break;
        case "\b": if (this.x > 0) this.x--; break;
        case "\t": this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8); break;
        default: if (ch >= " ") this.put(ch);
      }
    }
  };
  Screen.prototype.text = function () {
    return this.lines.map(function (l) { return l.join("").replace(/\s+$/, ""); }).join("\n");
  };

  var header = null, events = [], screen = null, index = 0, elapsed = 0, timer = null, last = 0;
  function speed() { var s = document.getElementById("speed"); return s ? parseFloat(s.value) || 1 : 1; }
  function fmt(t) { var s = Math.floor(t); return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2); }
  function reset() {
    screen = new Screen(Math.min(header.width || 80, 300), Math.min(header.height || 24, 200));
    index = 0; elapsed = 0; pre.textContent = screen.text(); if (clock) clock.textContent = "0:00";
  }
  function tick() {
    var now = performance.now();
    elapsed += (now - last) / 1000 * speed(); last = now;
    var changed = false;
    while (index < events.length && events[index][0] <= elapsed) {
      if (events[index][1] === "o") { screen.write(events[index][2]); changed = true; }
      index++;
    }
    if (changed) pre.textContent = screen.text();
    if (clock) clock.textContent = fmt(elapsed);
    if (index >= events.length) { pause(); pre.setAttribute("data-finished", "true"); }
  }
  function play() { if (timer || !header) return; if (index >= events.length) reset(); last = performance.now(); timer = setInterval(tick, 40); }
  function pause() { if (timer) { clearInterval(timer); timer = null; } }

  fetch(pre.getAttribute("data-src"), { credentials: "same-origin" })
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
    .then(function (body) {
      var lines = body.split("\n");
      header = JSON.parse(lines[0]);
      for (var i = 1; i < lines.length; i++) {
        if (!lines[i].trim()) continue;
        try { events.push(JSON.parse(lines[i])); } catch (e) { break; } // a cut-off last line
      }
      reset();
      pre.setAttribute("data-events", String(events.length));
      play();
    })
    .catch(function (e) { pre.textContent = "Cannot load the recording: " + e.message; });

  document.getElementById("play").addEventListener("click", play);
  document.getElementById("pause").addEventListener("click", pause);
  document.getElementById("restart").addEventListener("click", function () { pause(); reset(); play(); });
})();
