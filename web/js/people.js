// The People panel: everyone in the gallery with a thumbnail and example count; rename,
// delete, add examples (photos or camera), clear all. Changes go through the REST API; the
// list reloads on the server's `people_changed`, whoever made the change.

import { withConfirmation } from "./confirm.js";

const $ = (id) => document.getElementById(id);

/**
 * An enrolment's outcome: {text, details}. text: one line ("Added 3 examples of Anna. 2 of 5
 * images not used: no face found. All 3 faces look like Bo (closest distance 0.091)."),
 * details: one line per image, shown on demand.
 */
export function describeEnrolment(result) {
  const plural = result.examples_added === 1 ? "example" : "examples";
  const parts = [`Added ${result.examples_added} ${plural} of ${result.name}.`];
  if (result.rejected_summary) parts.push(result.rejected_summary);
  if (result.lookalike_summary) parts.push(result.lookalike_summary);
  const picked = result.picked ?? [];
  if (picked.length) {
    parts.push(`${picked.length} of the photos showed several faces: the largest was taken.`);
  }
  const details = [
    ...(result.rejected ?? []).map((r) => `${r.file}: ${r.reason}`),
    ...picked.map((p) => `${p.file}: ${p.message}`),
    ...(result.warnings ?? []),
  ];
  return { text: parts.join(" "), details };
}

/** Show {text, details} in `element`: the line, and the details folded under it. */
export function showOutcome(element, outcome) {
  const { text, details = [] } = typeof outcome === "string" ? { text: outcome } : outcome;
  element.replaceChildren(document.createTextNode(text));
  if (details.length) {
    const fold = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Details";
    const list = document.createElement("ul");
    list.replaceChildren(...details.map((line) => {
      const item = document.createElement("li");
      item.textContent = line;
      return item;
    }));
    fold.append(summary, list);
    element.append(" ", fold);
  }
  element.hidden = !text;
}

function button(text, onClick, className = "") {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = text;
  element.className = className;
  element.addEventListener("click", onClick);
  return element;
}

export class PeopleView {
  /** api: Api; capture(name): start a camera capture for that person; say(text). */
  constructor({ api, capture, say }) {
    this.api = api;
    this.capture = capture;
    this.say = say;
    this.people = [];
    this.filesFor = null; // whose "Add photos" opened the file picker
    this.loading = null;
    this.again = false;
    $("people-clear").addEventListener("click", () => this.clearAll());
    $("people-files").addEventListener("change", () => this.addPhotos());
  }

  /**
   * Reload the list. A call while a reload is under way asks for one more after it (that one
   * may have been answered before the change the caller knows of), never for several.
   */
  refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.api.people()
      .then((people) => this.render(people))
      .catch((err) => this.say(`People: ${err.message}`))
      .finally(() => {
        this.loading = null;
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
    return this.loading;
  }

  render(people) {
    this.people = people;
    const total = people.reduce((sum, p) => sum + p.examples, 0);
    $("people-count").textContent = people.length ? `(${people.length} · ${total} examples)` : "";
    $("people-empty").hidden = people.length > 0;
    $("people-clear").hidden = !this.api.canChange || people.length === 0;
    $("people-names").replaceChildren(...people.map((p) => new Option(p.name)));
    // A reload (a people_changed from an earlier change) must not wipe a rename being typed.
    if (this.renaming && people.some((p) => p.name === this.renaming)) return;
    this.renaming = null;
    $("people").replaceChildren(...people.map((p) => this.row(p)));
  }

  row(person) {
    const item = document.createElement("li");
    item.className = "person";
    item.dataset.name = person.name;
    const thumb = document.createElement("img");
    thumb.alt = "";
    thumb.loading = "lazy";
    if (person.thumbnail) {
      this.api.imageUrl(person.thumbnail).then((url) => {
        thumb.onload = () => URL.revokeObjectURL(url);
        thumb.src = url;
      }).catch(() => {});
    }
    const name = document.createElement("span");
    name.className = "person-name";
    name.textContent = person.name;
    const count = document.createElement("span");
    count.className = "muted";
    count.textContent = `${person.examples} example${person.examples === 1 ? "" : "s"}`;
    const text = document.createElement("div");
    text.className = "person-text";
    text.append(name, count);
    item.append(thumb, text);
    if (this.api.canChange) {
      const actions = document.createElement("div");
      actions.className = "person-actions";
      actions.append(
        button("Rename", () => this.startRename(item, person)),
        button("+ Photos", () => this.pickPhotos(person.name)),
        button("+ Camera", () => this.capture(person.name)),
        button("Delete", () => this.remove(person), "danger"),
      );
      item.append(actions);
    }
    return item;
  }

  startRename(item, person) {
    const form = document.createElement("form");
    form.className = "rename";
    const input = document.createElement("input");
    input.value = person.name;
    input.maxLength = 100;
    form.noValidate = true; // an empty name is answered in the message line, not a tooltip
    input.setAttribute("aria-label", `New name for ${person.name}`);
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    save.className = "primary";
    form.append(input, save, button("Cancel", () => {
      this.renaming = null;
      this.render(this.people);
    }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!input.value.trim()) {
        this.say("Rename: the new name cannot be empty.");
        input.focus();
        return;
      }
      try {
        const answer = await this.api.rename(person.name, input.value);
        this.renaming = null;
        this.say(`Renamed ${answer.previous} to ${answer.name}.`);
        await this.refresh();
      } catch (err) {
        this.say(`Rename: ${err.message}`);
        input.focus();
      }
    });
    this.renaming = person.name;
    item.querySelector(".person-text").replaceWith(form);
    item.querySelector(".person-actions")?.remove();
    input.select();
  }

  pickPhotos(name) {
    this.filesFor = name;
    $("people-files").value = "";
    $("people-files").click();
  }

  async addPhotos() {
    const files = [...$("people-files").files];
    if (!files.length || !this.filesFor) return;
    const name = this.filesFor;
    this.say(`Adding ${files.length} photo${files.length === 1 ? "" : "s"} to ${name}…`);
    try {
      // The row's own button: adding to this person is what was asked (add=true); faces that
      // do not look like them are still asked about.
      const answer = await withConfirmation(
        (flags) => this.api.addExamples(name, files, { ...flags, add: true }),
        (err) => (err?.status === 409 ? err.body : null),
      );
      this.say(answer ? describeEnrolment(answer) : "Nothing added.");
    } catch (err) {
      this.say(`Add photos: ${err.message}`);
    }
    await this.refresh();
  }

  async remove(person) {
    const plural = person.examples === 1 ? "example" : "examples";
    if (!window.confirm(`Delete ${person.name} and their ${person.examples} ${plural}?`)) return;
    try {
      await this.api.remove(person.name);
      this.say(`Deleted ${person.name}.`);
    } catch (err) {
      this.say(`Delete: ${err.message}`);
    }
    await this.refresh();
  }

  async clearAll() {
    const count = this.people.length;
    if (!window.confirm(`Delete all ${count} people and every example? This cannot be undone.`)) {
      return;
    }
    try {
      const answer = await this.api.clear();
      this.say(`Deleted ${answer.people_removed} people.`);
    } catch (err) {
      this.say(`Clear: ${err.message}`);
    }
    await this.refresh();
  }
}
