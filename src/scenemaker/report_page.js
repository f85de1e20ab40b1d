// The script of OUT/report.html (scenemaker/report_page.py inlines it first in <head>).
// It records errors, says on <html> when the page is ready (data-status="ready", with
// data-images, data-broken, data-model, data-errors, data-fov: for people and for tests),
// matches the 3D view's field of view to the photo's camera, and runs the controls.
(function () {
  "use strict";
  const root = document.documentElement;
  const errors = [];
  function fail(what) {
    errors.push(String(what));
    root.dataset.errors = String(errors.length);
    root.dataset.lastError = String(what).slice(0, 300);
  }
  root.dataset.status = "loading";
  root.dataset.errors = "0";
  // capture: also an <img> or <model-viewer> that fails to load
  window.addEventListener("error", (e) => fail(e.message || "failed to load " + (e.target && e.target.tagName)), true);
  window.addEventListener("unhandledrejection", (e) => fail(e.reason));
  document.addEventListener("securitypolicyviolation", (e) => fail("blocked by the page policy: " + e.blockedURI));

  function imageReady(img) {
    return new Promise((resolve) => {
      const done = () => resolve(img.complete && img.naturalWidth > 0);
      if (img.complete) done();
      else {
        img.addEventListener("load", done, { once: true });
        img.addEventListener("error", done, { once: true });
      }
    });
  }

  function modelReady(viewer) {
    if (!viewer) return Promise.resolve("none");
    if (!window.customElements.get("model-viewer")) return Promise.resolve("missing");
    if (viewer.loaded) return Promise.resolve("loaded");
    return new Promise((resolve) => {
      viewer.addEventListener("load", () => resolve("loaded"), { once: true });
      viewer.addEventListener("error", (e) => {
        fail("3D view: " + JSON.stringify(e.detail && e.detail.type));
        resolve("error");
      }, { once: true });
    });
  }

  const frame = () => new Promise((resolve) => window.requestAnimationFrame(() => resolve()));
  const rad = (deg) => (deg * Math.PI) / 180;

  // model-viewer widens the vertical field of view when the element is narrower than the
  // model's "ideal aspect": set the one that comes out as the photo's.
  async function matchFieldOfView(viewer) {
    const want = parseFloat(viewer.dataset.fov);
    let set = want;
    for (let i = 0; i < 5; i++) {
      viewer.jumpCameraToGoal();
      await viewer.updateComplete;
      await frame();
      const got = viewer.getFieldOfView();
      if (!(got > 0) || Math.abs(got - want) < 0.01) break;
      set = (2 * Math.atan((Math.tan(rad(set) / 2) * Math.tan(rad(want) / 2)) / Math.tan(rad(got) / 2)) * 180) / Math.PI;
      viewer.fieldOfView = set.toFixed(4) + "deg";
    }
    root.dataset.fov = viewer.getFieldOfView().toFixed(3);
  }

  async function resetCamera(viewer) {
    viewer.cameraTarget = viewer.getAttribute("camera-target");
    viewer.cameraOrbit = viewer.getAttribute("camera-orbit");
    viewer.fieldOfView = viewer.getAttribute("field-of-view");
    await matchFieldOfView(viewer);
  }

  function controls(viewer) {
    for (const slider of document.querySelectorAll("input[data-opacity-of]")) {
      const layer = document.getElementById(slider.dataset.opacityOf);
      const update = () => { layer.style.opacity = String(slider.value / 100); };
      slider.addEventListener("input", update);
      update();
    }
    const behind = document.getElementById("photo-behind");
    if (behind) {
      const view = document.getElementById("view3d");
      const update = () => view.classList.toggle("with-photo", behind.checked);
      behind.addEventListener("change", update);
      update();
    }
    const reset = document.getElementById("reset-camera");
    if (reset && viewer) reset.addEventListener("click", () => resetCamera(viewer));
  }

  async function ready() {
    const viewer = document.querySelector("model-viewer");
    controls(viewer);
    const images = Array.from(document.images);
    const loaded = await Promise.all(images.map(imageReady));
    const model = await modelReady(viewer);
    if (model === "loaded") await matchFieldOfView(viewer);
    root.dataset.images = String(loaded.filter(Boolean).length);
    root.dataset.broken = String(loaded.filter((ok) => !ok).length);
    root.dataset.model = model;
    const status = document.getElementById("view-status");
    if (status && model === "missing") status.textContent = "the 3D viewer did not start";
    root.dataset.status = "ready";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
