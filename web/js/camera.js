// The camera: getUserMedia into a <video>, front/back switch, and frames grabbed as JPEG.

export class Camera {
  /** @param {HTMLVideoElement} video */
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.facing = "user"; // "user" = front camera, "environment" = back camera
    this.canvas = document.createElement("canvas"); // off-screen, reused for every frame
  }

  /** Open the camera facing `facing`, at up to 1920x1080 (the browser gives the nearest size the
   * camera has). Asked for large so that the "auto" detail can send small faces at a size the
   * server finds them (detail.js); a 640x480 webcam still gives 640x480, sent as before. */
  async start(facing = this.facing) {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error(window.isSecureContext
        ? "This browser offers no camera access."
        : "The camera needs a secure page: open the https:// address.");
    }
    this.stop();
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: { ideal: facing }, width: { ideal: 1920 }, height: { ideal: 1080 } },
    });
    // Desktop cameras report no facingMode; treat them as front cameras (shown mirrored).
    const track = this.stream.getVideoTracks()[0];
    this.facing = track?.getSettings?.().facingMode || facing;
    this.video.srcObject = this.stream;
    await this.video.play();
  }

  stop() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    this.video.srcObject = null;
  }

  get running() {
    return this.stream !== null;
  }

  get ready() {
    return this.running && this.video.readyState >= 2 && this.video.videoWidth > 0;
  }

  /** A front camera is shown as a mirror, as people expect of a selfie view. */
  get mirrored() {
    return this.facing !== "environment";
  }

  async hasSeveralCameras() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.filter((d) => d.kind === "videoinput").length > 1;
  }

  /**
   * The current picture, scaled so that its longer side is at most `maxSide` pixels, as JPEG.
   * Smaller frames cost less to send and to analyse; boxes come back in these pixels.
   * @returns {Promise<{blob: Blob, width: number, height: number}>}
   */
  grab(maxSide, quality) {
    const { videoWidth: vw, videoHeight: vh } = this.video;
    const scale = Math.min(1, maxSide / Math.max(vw, vh));
    const width = Math.round(vw * scale);
    const height = Math.round(vh * scale);
    this.canvas.width = width;
    this.canvas.height = height;
    this.canvas.getContext("2d").drawImage(this.video, 0, 0, width, height);
    return new Promise((resolve, reject) => {
      this.canvas.toBlob(
        (blob) => (blob ? resolve({ blob, width, height }) : reject(new Error("JPEG encoding failed"))),
        "image/jpeg",
        quality,
      );
    });
  }
}
