// The inbox's enhancements. Every page works without this script: it only adds a
// "select all" box to the bulk form and keyboard shortcuts. No network access, no
// inline anything (the CSP allows scripts from 'self' only).
//
// Shortcuts (ignored while typing in a field):
//   j / k  next / previous source      x  select or unselect it
//   o  open it (Enter too: j and k focus its link)   /  search
//   a  select or unselect every source on the page
"use strict";

// The re-wrap progress page: press "Continue" for the admin, so a long re-wrap runs on.
(function () {
  const next = document.querySelector("form.rewrap-continue[data-auto]");
  if (next) window.setTimeout(() => next.requestSubmit(), 300);
})();

(function () {
  const form = document.querySelector("form.bulk");
  if (!form) return;
  const boxes = () => Array.from(form.querySelectorAll('input[type="checkbox"][name="source"]'));
  const rows = () => Array.from(form.querySelectorAll("tr.source-row"));

  // "Select all": a checkbox in the header cell of the select column.
  const header = form.querySelector("th.select-column");
  const all = document.createElement("input");
  all.type = "checkbox";
  all.id = "select-all";
  all.setAttribute("aria-label", header ? header.textContent.trim() : "Select all");
  if (header) {
    header.textContent = "";
    header.appendChild(all);
  }
  const sync = () => {
    const list = boxes();
    const ticked = list.filter((box) => box.checked).length;
    all.checked = list.length > 0 && ticked === list.length;
    all.indeterminate = ticked > 0 && ticked < list.length;
  };
  all.addEventListener("change", () => {
    for (const box of boxes()) box.checked = all.checked;
    sync();
  });
  form.addEventListener("change", (event) => {
    if (event.target !== all) sync();
  });

  let current = -1;
  const focusRow = (index) => {
    const list = rows();
    if (list.length === 0) return;
    current = Math.max(0, Math.min(list.length - 1, index));
    list.forEach((row, i) => row.classList.toggle("current", i === current));
    const link = list[current].querySelector("a.source-link");
    if (link) link.focus();
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing =
      target instanceof HTMLInputElement ||
      target instanceof HTMLTextAreaElement ||
      target instanceof HTMLSelectElement;
    if (typing && !(target instanceof HTMLInputElement && target.type === "checkbox")) return;
    const list = rows();
    switch (event.key) {
      case "j":
        focusRow(current + 1);
        break;
      case "k":
        focusRow(current - 1);
        break;
      case "x":
        if (current >= 0 && list[current]) {
          const box = list[current].querySelector('input[name="source"]');
          box.checked = !box.checked;
          sync();
        }
        break;
      case "a":
        all.checked = !all.checked;
        for (const box of boxes()) box.checked = all.checked;
        sync();
        break;
      case "o": {
        if (current < 0 || !list[current]) return;
        const link = list[current].querySelector("a.source-link");
        if (link) window.location.assign(link.href);
        break;
      }
      case "/": {
        const search = document.getElementById("q");
        if (search) search.focus();
        break;
      }
      default:
        return;
    }
    event.preventDefault();
  });

  const help = document.createElement("p");
  help.className = "shortcuts";
  help.textContent = form.dataset.shortcuts || "";
  if (help.textContent) form.insertBefore(help, form.firstChild);
})();
