// 和暦 beside each date input, kept current as the clerk types or picks.
// The same eras as verifier/_wareki.py; each starts on its official first day.
(function () {
  "use strict";
  var ERAS = [
    ["2019-05-01", "令和", "Reiwa"],
    ["1989-01-08", "平成", "Heisei"],
    ["1926-12-25", "昭和", "Showa"],
    ["1912-07-30", "大正", "Taisho"],
    ["1868-10-23", "明治", "Meiji"]
  ];

  function wareki(iso, lang) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || "");
    if (!m) return "";
    var y = +m[1], mo = +m[2], d = +m[3];
    for (var i = 0; i < ERAS.length; i++) {
      if (iso >= ERAS[i][0]) {
        var n = y - +ERAS[i][0].slice(0, 4) + 1;
        if (lang === "en") return ERAS[i][2] + " " + n;
        return ERAS[i][1] + (n === 1 ? "元" : n) + "年" + mo + "月" + d + "日";
      }
    }
    return lang === "en" ? "" : y + "年" + mo + "月" + d + "日";
  }

  function wire(out) {
    var input = document.getElementById(out.getAttribute("data-wareki-for"));
    if (!input) return;
    var update = function () { out.textContent = wareki(input.value, out.getAttribute("data-lang")); };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
    update();
  }

  document.querySelectorAll("[data-wareki-for]").forEach(wire);
  // Said once every field listens: a test (or a fast clerk's autofill) that
  // types before this would leave the 和暦 blank.
  document.documentElement.setAttribute("data-wareki", "ready");
})();
