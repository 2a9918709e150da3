// Capture Examples: the server picks example frames out of the live stream (one face, a new
// pose each time) and reports its progress; here is the panel that starts it, shows how far it
// is and what to do, and then asks for the name.

import { withConfirmation } from "./confirm.js";

const COUNT = 10;
const HINT_START = "Look at the camera and move your head a little.";
const $ = (id) => document.getElementById(id);

export class CaptureView {
  /**
   * live: the connection (request(event, payload)); ensureCamera(): starts the camera if it is
   * off; onSaved(result): after an enrolment; say(text): the page's message line.
   */
  constructor({ live, ensureCamera, onSaved, say }) {
    this.live = live;
    this.ensureCamera = ensureCamera;
    this.onSaved = onSaved;
    this.say = say;
    this.active = false;
    $("capture-cancel").addEventListener("click", () => this.cancel());
    $("capture-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.save($("capture-name").value);
    });
  }

  /** Start collecting; `name` pre-fills the name box (adding examples to someone known). */
  async start(name = "") {
    this.say("");
    await this.ensureCamera();
    const answer = await this.live.request("capture_start", { count: COUNT });
    if (!answer.ok) {
      this.say(answer.error);
      return;
    }
    this.active = true;
    $("capture-panel").hidden = false;
    $("capture-collecting").hidden = false;
    $("capture-form").hidden = true;
    $("capture-name").value = name;
    $("capture").disabled = true;
    document.body.classList.add("capturing");
    this.show({ collected: 0, target: answer.target, done: false, hint: null });
    $("capture-panel").scrollIntoView({ block: "nearest" });
  }

  /** The server's `capture` event. */
  show(progress) {
    if (!this.active) return;
    $("capture-bar").max = progress.target;
    $("capture-bar").value = progress.collected;
    $("capture-count").textContent = `${progress.collected} / ${progress.target}`;
    const good = progress.collected > 0 ? "Good: keep moving your head a little." : HINT_START;
    $("capture-hint").textContent = progress.hint
      || (progress.done ? "Done: now give the name." : good);
    $("capture-panel").dataset.hint = progress.hint ? "bad" : "good";
    if (progress.done && $("capture-form").hidden) {
      $("capture-form").hidden = false;
      $("capture-name").focus();
    }
  }

  async save(name) {
    if (!name.trim()) {
      $("capture-hint").textContent = "Give the person's name first.";
      $("capture-panel").dataset.hint = "bad";
      $("capture-name").focus();
      return;
    }
    $("capture-save").disabled = true;
    // An existing name, or faces unlike that person's: the server refuses with a reason and
    // keeps the frames; asked, the user confirms (or not) and the same frames are saved.
    const answer = await withConfirmation(
      (flags) => this.live.request("capture_save", { name, ...flags }),
      (reply) => (reply && !reply.ok && reply.reason ? reply : null),
    );
    $("capture-save").disabled = false;
    if (answer === null) {
      $("capture-hint").textContent = "Not saved: choose another name, or Cancel.";
      $("capture-panel").dataset.hint = "bad";
      $("capture-name").select();
      return;
    }
    if (!answer.ok) {
      // Kept on the server: correct the name and save again.
      $("capture-hint").textContent = answer.error;
      $("capture-panel").dataset.hint = "bad";
      return;
    }
    this.close();
    this.onSaved(answer);
  }

  async cancel() {
    this.close();
    await this.live.request("capture_cancel");
  }

  close() {
    this.active = false;
    $("capture-panel").hidden = true;
    $("capture").disabled = false;
    document.body.classList.remove("capturing");
  }
}
