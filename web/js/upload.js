// The Photos view: add people from image files, and identify the faces of a photo, shown with
// its boxes and names drawn on.
import { drawOnImage, listLabels } from "./overlay.js";
import { withConfirmation } from "./confirm.js";
import { describeEnrolment, showOutcome } from "./people.js";

const $ = (id) => document.getElementById(id);

/**
 * A person's name from a photo's file name, for uploads without a typed name:
 * "George_W_Bush_0001.jpg" -> "George W Bush", "anna (2).png" -> "anna", "Zoë-3.jpg" -> "Zoë".
 * Underscores read as spaces (LFW's folders and files are named so) and a trailing number is
 * the photo's, not the person's.
 */
export function nameFromFile(fileName) {
  const stem = fileName.replace(/\.[^.]*$/, "");
  const name = stem
    .replace(/[\s_-]*\(?\d+\)?$/, "")
    .replace(/_/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return name || stem;
}

/** Files grouped by person: [[name, File[]], ...] (names compared ignoring case). */
function groupByName(files, typedName) {
  const groups = new Map();
  for (const file of files) {
    const name = typedName || nameFromFile(file.name);
    const key = name.toLocaleLowerCase();
    if (!groups.has(key)) groups.set(key, [name, []]);
    groups.get(key)[1].push(file);
  }
  return [...groups.values()];
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.onload = () => {
      URL.revokeObjectURL(url);
      resolve(image);
    };
    image.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error("the browser cannot show this file"));
    };
    image.src = url;
  });
}

export class PhotosView {
  /** api: Api; maxFiles(): the server's per-request file limit; onChanged(): reload people. */
  constructor({ api, maxFiles, onChanged }) {
    this.api = api;
    this.maxFiles = maxFiles;
    this.onChanged = onChanged;
    $("enroll-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.enroll();
    });
    $("identify-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.identify();
    });
  }

  result(outcome) {
    showOutcome($("photos-result"), outcome);
  }

  async enroll() {
    const files = [...$("enroll-files").files];
    const typed = $("enroll-name").value.trim();
    if (!files.length) return;
    const lines = [];
    const details = [];
    for (const [name, group] of groupByName(files, typed)) {
      // The server takes a limited number of files per request: send big groups in parts.
      let confirmed = {};
      for (let i = 0; i < group.length; i += this.maxFiles()) {
        const part = group.slice(i, i + this.maxFiles());
        this.result(`Adding ${name}…`);
        try {
          const answer = await withConfirmation(
            (flags) => {
              confirmed = { add: flags.add || confirmed.add, force: flags.force || confirmed.force };
              return this.api.addExamples(name, part, confirmed);
            },
            (err) => (err?.status === 409 ? err.body : null),
          );
          if (!answer) {
            lines.push(`${name}: nothing added.`);
            break;
          }
          const outcome = describeEnrolment(answer);
          lines.push(outcome.text);
          details.push(...outcome.details);
          confirmed = { ...confirmed, add: true }; // the next parts go to the same person
        } catch (err) {
          lines.push(`${name}: ${err.message}`);
        }
      }
    }
    this.result({ text: lines.join(" "), details });
    $("enroll-form").reset();
    this.onChanged();
  }

  async identify() {
    const file = $("identify-file").files[0];
    if (!file) return;
    this.result("Looking…");
    try {
      const [answer, image] = await Promise.all([this.api.identify(file), loadImage(file)]);
      drawOnImage($("identify-canvas"), image, answer.faces);
      $("identify-canvas").hidden = false;
      listLabels($("identify-labels"), answer.faces);
      const names = answer.faces.map((face) => face.name);
      this.result(names.length
        ? `${names.length} face${names.length === 1 ? "" : "s"}: ${names.join(", ")}`
        : "No face found in this photo.");
    } catch (err) {
      $("identify-canvas").hidden = true;
      this.result(`Identify: ${err.message}`);
    }
  }
}
