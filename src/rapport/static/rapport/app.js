/* Rapport staff UI: keyboard shortcuts, search list navigation, nav toggle, confirmations.
   No inline scripts anywhere (CSP-ready); everything hooks onto data-* attributes. */
(function () {
  "use strict";

  function searchInput() { return document.querySelector("[data-search-input]"); }
  function resultsBox() { return document.querySelector("[data-search-results]"); }
  function options() { var box = resultsBox(); return box ? Array.prototype.slice.call(box.querySelectorAll("[role=option]")) : []; }

  function select(index) {
    var opts = options(), input = searchInput();
    opts.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (input) {
      if (index >= 0 && opts[index]) { input.setAttribute("aria-activedescendant", opts[index].id); opts[index].scrollIntoView({ block: "nearest" }); }
      else { input.removeAttribute("aria-activedescendant"); }
    }
  }
  function selectedIndex() { return options().findIndex(function (o) { return o.getAttribute("aria-selected") === "true"; }); }
  function closeResults() { var box = resultsBox(), input = searchInput(); if (box) { box.innerHTML = ""; } if (input) { input.setAttribute("aria-expanded", "false"); input.removeAttribute("aria-activedescendant"); } }

  // "/" focuses the search from anywhere except while typing in a field.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    var typing = tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable;
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      var input = searchInput();
      if (input) { event.preventDefault(); input.focus(); input.select(); }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.target !== searchInput()) { return; }
    var opts = options(), index = selectedIndex();
    if (event.key === "ArrowDown" && opts.length) { event.preventDefault(); select(Math.min(index + 1, opts.length - 1)); }
    else if (event.key === "ArrowUp" && opts.length) { event.preventDefault(); select(Math.max(index - 1, 0)); }
    else if (event.key === "Enter" && opts.length) {
      event.preventDefault();
      window.location.assign(opts[index >= 0 ? index : 0].href);
    } else if (event.key === "Escape") { closeResults(); }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target === resultsBox()) {
      var input = searchInput();
      if (input) { input.setAttribute("aria-expanded", options().length ? "true" : "false"); }
      select(-1);
    }
    var empty = document.getElementById("timeline-empty");
    if (empty && event.target.id === "timeline-list") { empty.remove(); }
  });

  document.addEventListener("click", function (event) {
    var form = document.querySelector("form.search");
    if (form && !form.contains(event.target)) { closeResults(); }
    var toggle = event.target.closest("[data-nav-toggle]");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
})();
