// The create form's budget helper: WeChat Pay requires the budget
// (max_amount) to be the face value (coupon_amount) times the number of
// coupons (max_coupons). As the operator types, this shows that product
// next to the budget and says when the budget entered differs. It only
// helps: the server checks the rule again (favorform.BudgetFor), and the
// form works without it.
(function () {
  "use strict";
  var count = document.getElementById("max_coupons");
  var face = document.getElementById("coupon_amount");
  var total = document.getElementById("max_amount");
  var out = document.getElementById("computed-budget");
  if (!count || !face || !total || !out || typeof BigInt !== "function") {
    return;
  }

  // fen reads yuan with at most two decimals ("19.9", "20") as fen; null
  // for anything else, which the server will explain.
  function fen(s) {
    var m = /^(\d{1,15})(?:\.(\d{1,2}))?$/.exec(s.trim());
    if (!m) {
      return null;
    }
    return BigInt(m[1]) * 100n + BigInt(((m[2] || "") + "00").slice(0, 2));
  }

  function whole(s) {
    var m = /^\d{1,12}$/.exec(s.trim());
    return m ? BigInt(m[0]) : null;
  }

  function yuan(f) {
    var cents = (f % 100n).toString();
    return (f / 100n).toString() + "." + (cents.length < 2 ? "0" + cents : cents);
  }

  function update() {
    var n = whole(count.value);
    var each = fen(face.value);
    if (n === null || each === null || n === 0n || each === 0n) {
      out.hidden = true;
      out.textContent = "";
      return;
    }
    var want = n * each;
    var text = out.dataset.label + " " + yuan(want);
    var entered = fen(total.value);
    if (entered !== null && entered !== want) {
      text += " (" + out.dataset.mismatch + ")";
      out.classList.add("budget-mismatch");
    } else {
      out.classList.remove("budget-mismatch");
    }
    out.textContent = text;
    out.hidden = false;
  }

  [count, face, total].forEach(function (el) {
    el.addEventListener("input", update);
  });
  update();
})();
