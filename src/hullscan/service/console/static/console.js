// hullscan console: the little the pages need beyond HTML. Everything works without it except live refresh.
//  - [data-poll=URL]: refresh this element from URL (a server-rendered, escaped fragment) every 2 seconds while the
//    fragment still asks for it; with data-reload-when-done, reload the page once it stops asking (a scan ended).
//  - [data-add-row=TBODY]: a button that adds an empty row to an allowlist editor.
//  - form[data-confirm]: ask before sending (deleting a user, a registry, a token).
"use strict";

(function () {
  var INTERVAL = 2000;

  function focusKey(el) {
    var form = el && el.closest ? el.closest("form") : null;
    return form ? form.getAttribute("action") : null;
  }

  function refresh(el) {
    var url = el.getAttribute("data-poll");
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected) { window.location.reload(); return ""; }  // the session ended: log in again
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.body.firstElementChild;
        if (!fresh) { return; }
        var active = document.activeElement;
        var key = el.contains(active) ? focusKey(active) : null;
        var reload = el.hasAttribute("data-reload-when-done");
        el.replaceWith(fresh);
        if (!fresh.hasAttribute("data-poll")) {
          if (reload) { window.location.reload(); }
          return;
        }
        if (key) {
          var forms = fresh.querySelectorAll("form");
          for (var i = 0; i < forms.length; i++) {
            if (forms[i].getAttribute("action") === key) {
              var button = forms[i].querySelector("button");
              if (button) { button.focus(); }
            }
          }
        }
        schedule(fresh, INTERVAL);
      })
      .catch(function () { schedule(el, INTERVAL * 3); });
  }

  function schedule(el, delay) {
    window.setTimeout(function () { if (document.body.contains(el)) { refresh(el); } }, delay);
  }

  function addRow(button) {
    var body = document.getElementById(button.getAttribute("data-add-row"));
    var rows = document.getElementById("allow-rows");
    if (!body || !rows) { return; }
    var template = body.querySelector("tr.new-row:last-of-type") || body.querySelector("tr.new-row");
    if (!template) { return; }
    var index = parseInt(rows.value, 10);
    var row = template.cloneNode(true);
    row.querySelectorAll("input").forEach(function (input) {
      input.name = input.name.replace(/^allow-\d+-/, "allow-" + index + "-");
      input.value = "";
      input.removeAttribute("autofocus");
      var label = input.getAttribute("aria-label");
      if (label) { input.setAttribute("aria-label", label.replace(/row \d+$/, "row " + (index + 1))); }
    });
    body.appendChild(row);
    rows.value = String(index + 1);
    var first = row.querySelector("input");
    if (first) { first.focus(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(function (el) { schedule(el, INTERVAL); });
    document.querySelectorAll("[data-add-row]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { addRow(button); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
