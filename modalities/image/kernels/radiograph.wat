;; The per-pixel passes of a synthetic radiograph (radiograph-pixels.ts drives them and states the
;; formulas; the warp's are chest-radiograph.ts `warpRow`). Compiled to radiograph.wasm by build.ts (`npm run build:wasm`).
;;
;; Every number is computed with the operations, precision and order of the plain JavaScript it
;; replaces, so the images are the same bit for bit (tests/unit/radiograph-kernel.test.ts keeps
;; that reference): doubles where JavaScript computed doubles, rounded to float32 where it stored
;; into a Float32Array, cell sums added column by column in the same order.
;;
;; One instance per workspace (image size, grid side): its memory holds the buffers, at offsets
;; given once to $init; JavaScript reads and writes them through typed-array views.
(module
  (import "env" "memory" (memory 1))

  ;; Shape: size×size pixels, n×n grid cells of f×f pixels.
  (global $size (mut i32) (i32.const 0))
  (global $n (mut i32) (i32.const 0))
  (global $f (mut i32) (i32.const 0))
  ;; Byte offsets of the buffers.
  (global $density (mut i32) (i32.const 0)) ;; f32 size×size
  (global $pixels (mut i32) (i32.const 0)) ;; u16 size×size
  (global $half (mut i32) (i32.const 0)) ;; f32 (size/2)², the anatomy drawn at half size
  (global $across (mut i32) (i32.const 0)) ;; f32 (size/2)×size, its rows upsampled across
  (global $shift (mut i32) (i32.const 0)) ;; f64 f×size, rows of the component shift's varying part
  (global $col_sum (mut i32) (i32.const 0)) ;; f64 size, per column the sum over the cell row so far
  (global $cells (mut i32) (i32.const 0)) ;; f64 n×n, per cell the sum of the last $draw_row pass
  (global $grid (mut i32) (i32.const 0)) ;; f64 n×n, per cell the mean clamped density
  (global $seed (mut i32) (i32.const 0)) ;; i32 16, the noise stream's seed
  (global $scratch (mut i32) (i32.const 0)) ;; 16 bytes, the last pixels of a row not a multiple of 4

  ;; The noise stream: four sfc32 generators, lane l of each vector the state of the generator
  ;; that draws the pixels x ≡ l (mod 4) of every row.
  (global $a (mut v128) (v128.const i32x4 0 0 0 0))
  (global $b (mut v128) (v128.const i32x4 0 0 0 0))
  (global $c (mut v128) (v128.const i32x4 0 0 0 0))
  (global $d (mut v128) (v128.const i32x4 0 0 0 0))

  ;; The acquisition in stored units; $rounded = base + ROUNDING.
  (global $gain (mut f64) (f64.const 0))
  (global $step (mut f64) (f64.const 0))
  (global $rounded (mut f64) (f64.const 0))
  (global $max (mut f64) (f64.const 0))

  (func $init (export "init")
    (param $size i32) (param $n i32)
    (param $density i32) (param $pixels i32) (param $half i32) (param $across i32) (param $shift i32)
    (param $col_sum i32) (param $cells i32) (param $grid i32) (param $seed i32) (param $scratch i32)
    (global.set $size (local.get $size))
    (global.set $n (local.get $n))
    (global.set $f (i32.div_u (local.get $size) (local.get $n)))
    (global.set $density (local.get $density))
    (global.set $pixels (local.get $pixels))
    (global.set $half (local.get $half))
    (global.set $across (local.get $across))
    (global.set $shift (local.get $shift))
    (global.set $col_sum (local.get $col_sum))
    (global.set $cells (local.get $cells))
    (global.set $grid (local.get $grid))
    (global.set $seed (local.get $seed))
    (global.set $scratch (local.get $scratch)))

  ;; Grid row gy of `dst` from the column sums: cell gx = (Σ over its f columns, in order) · scale.
  ;; The column sums are then cleared for the next grid row.
  (func $add_cell_row (param $dst i32) (param $gy i32) (param $scale f64)
    (local $gx i32) (local $x i32) (local $end i32) (local $s f64)
    (loop $cell
      (local.set $s (f64.const 0))
      (local.set $x (i32.mul (local.get $gx) (global.get $f)))
      (local.set $end (i32.add (local.get $x) (global.get $f)))
      (loop $column
        (local.set $s
          (f64.add (local.get $s)
            (f64.load (i32.add (global.get $col_sum) (i32.shl (local.get $x) (i32.const 3))))))
        (br_if $column (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 1))) (local.get $end))))
      (f64.store
        (i32.add (local.get $dst)
          (i32.shl (i32.add (i32.mul (local.get $gy) (global.get $n)) (local.get $gx)) (i32.const 3)))
        (f64.mul (local.get $s) (local.get $scale)))
      (br_if $cell (i32.lt_u (local.tee $gx (i32.add (local.get $gx) (i32.const 1))) (global.get $n))))
    (memory.fill (global.get $col_sum) (i32.const 0) (i32.shl (global.get $size) (i32.const 3))))

  ;; After row y: when it completes a grid row, that row's cells into `dst`.
  (func $end_row (param $y i32) (param $dst i32) (param $scale f64)
    (local $next i32)
    (local.set $next (i32.add (local.get $y) (i32.const 1)))
    (if (i32.eqz (i32.rem_u (local.get $next) (global.get $f)))
      (then
        (call $add_cell_row (local.get $dst)
          (i32.sub (i32.div_u (local.get $next) (global.get $f)) (i32.const 1))
          (local.get $scale)))))

;; --- The anatomy: rows of the deformed atlas (chest-radiograph.ts `warpRow` states the
  ;; formulas; the same operations, in the same order and precision, so the drawing is the same
  ;; bit for bit). Buffers set once by $init_warp.
  (global $w_size (mut i32) (i32.const 0)) ;; the drawing's side
  (global $w_side (mut i32) (i32.const 0)) ;; the atlas level's side
  (global $w_out (mut i32) (i32.const 0)) ;; f32 w_size², the drawing
  (global $w_src (mut i32) (i32.const 0)) ;; f32 w_side², the atlas level
  (global $w_mask (mut i32) (i32.const 0)) ;; u8 w_mask_side², the atlas's lung codes
  (global $w_mask_side (mut i32) (i32.const 0))
  (global $w_du (mut i32) (i32.const 0)) ;; f64 w_size, per column the offset from the heart centre
  (global $w_dcw (mut i32) (i32.const 0)) ;; f64 w_size, per column the heart warp's shift at weight 1
  (global $w_lungs (mut i32) (i32.const 0)) ;; u8 w_size², the drawing's lung codes
  (global $w_spans (mut i32) (i32.const 0)) ;; i32 4·w_size, per row each lung's run

  (func $init_warp (export "init_warp")
    (param $size i32) (param $side i32) (param $out i32) (param $src i32) (param $mask i32) (param $mask_side i32)
    (param $du i32) (param $dcw i32) (param $lungs i32) (param $spans i32)
    (global.set $w_size (local.get $size))
    (global.set $w_side (local.get $side))
    (global.set $w_out (local.get $out))
    (global.set $w_src (local.get $src))
    (global.set $w_mask (local.get $mask))
    (global.set $w_mask_side (local.get $mask_side))
    (global.set $w_du (local.get $du))
    (global.set $w_dcw (local.get $dcw))
    (global.set $w_lungs (local.get $lungs))
    (global.set $w_spans (local.get $spans)))

  ;; Row py: per pixel the warped offset dx = c0 + du − dcw·wy, atlas coordinates fx = ax0 +
  ;; axk·dx and fy = ay0 + ayk·dx clamped to [0, hi] (`v < 0 ? 0 : v > hi ? hi : v`), the bilinear
  ;; sample lift + gain·(top + ey·(bottom − top)) stored as float32, the lung code of the mask
  ;; pixel at ((fy + ½)·to_mask, (fx + ½)·to_mask); each lung's run (right code 1, left 2) written
  ;; when the two runs are ordered. Truncation saturates as JavaScript's `| 0` does on NaN (0).
  (func $warp_row (export "warp_row")
    (param $py i32) (param $ax0 f64) (param $axk f64) (param $ay0 f64) (param $ayk f64) (param $c0 f64)
    (param $wy f64) (param $gain f64) (param $lift f64) (param $hi f64) (param $to_mask f64)
    (local $px i32) (local $o i32) (local $row_bytes i32) (local $p i32) (local $q i32) (local $lung i32) (local $l i32)
    (local $r0 i32) (local $r1 i32) (local $l0 i32) (local $l1 i32) (local $at i32) (local $lanes i32)
    (local $dx v128) (local $fx v128) (local $fy v128) (local $ix v128) (local $iy v128) (local $ex v128)
    (local $s00 v128) (local $s01 v128) (local $s10 v128) (local $s11 v128) (local $top v128) (local $bottom v128)
    (local $value v128) (local $cell v128)
    (local.set $r0 (i32.const -1))
    (local.set $r1 (i32.const -1))
    (local.set $l0 (i32.const -1))
    (local.set $l1 (i32.const -1))
    (local.set $o (i32.mul (local.get $py) (global.get $w_size)))
    (local.set $row_bytes (i32.shl (global.get $w_side) (i32.const 2)))
    ;; Two pixels at a time (lanes 0 and 1 of each f64x2); the last of an odd row alone, its lane
    ;; 1 reading the buffers' slack and written nowhere.
    (loop $pairs
      (local.set $at (i32.shl (local.get $px) (i32.const 3)))
      (local.set $dx
        (f64x2.sub
          (f64x2.add (f64x2.splat (local.get $c0)) (v128.load (i32.add (global.get $w_du) (local.get $at))))
          (f64x2.mul (v128.load (i32.add (global.get $w_dcw) (local.get $at))) (f64x2.splat (local.get $wy)))))
      (local.set $fx (f64x2.add (f64x2.splat (local.get $ax0)) (f64x2.mul (f64x2.splat (local.get $axk)) (local.get $dx))))
      (local.set $fy (f64x2.add (f64x2.splat (local.get $ay0)) (f64x2.mul (f64x2.splat (local.get $ayk)) (local.get $dx))))
      ;; v < 0 ? 0 : v > hi ? hi : v (NaN stays NaN, as in JavaScript).
      (local.set $fx
        (v128.bitselect (f64x2.splat (f64.const 0))
          (v128.bitselect (f64x2.splat (local.get $hi)) (local.get $fx) (f64x2.gt (local.get $fx) (f64x2.splat (local.get $hi))))
          (f64x2.lt (local.get $fx) (f64x2.splat (f64.const 0)))))
      (local.set $fy
        (v128.bitselect (f64x2.splat (f64.const 0))
          (v128.bitselect (f64x2.splat (local.get $hi)) (local.get $fy) (f64x2.gt (local.get $fy) (f64x2.splat (local.get $hi))))
          (f64x2.lt (local.get $fy) (f64x2.splat (f64.const 0)))))
      (local.set $ix (i32x4.trunc_sat_f64x2_s_zero (local.get $fx)))
      (local.set $iy (i32x4.trunc_sat_f64x2_s_zero (local.get $fy)))
      (local.set $ex (f64x2.sub (local.get $fx) (f64x2.convert_low_i32x4_s (local.get $ix))))
      ;; Each lane's source pixel (iy·side + ix) and its three neighbours, gathered.
      (local.set $cell (i32x4.shl
        (i32x4.add (i32x4.mul (local.get $iy) (i32x4.splat (global.get $w_side))) (local.get $ix)) (i32.const 2)))
      (local.set $p (i32.add (global.get $w_src) (i32x4.extract_lane 0 (local.get $cell))))
      (local.set $q (i32.add (global.get $w_src) (i32x4.extract_lane 1 (local.get $cell))))
      (local.set $s00 (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (f32.load (local.get $p))))
        (f64.promote_f32 (f32.load (local.get $q)))))
      (local.set $s01 (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (f32.load offset=4 (local.get $p))))
        (f64.promote_f32 (f32.load offset=4 (local.get $q)))))
      (local.set $p (i32.add (local.get $p) (local.get $row_bytes)))
      (local.set $q (i32.add (local.get $q) (local.get $row_bytes)))
      (local.set $s10 (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (f32.load (local.get $p))))
        (f64.promote_f32 (f32.load (local.get $q)))))
      (local.set $s11 (f64x2.replace_lane 1 (f64x2.splat (f64.promote_f32 (f32.load offset=4 (local.get $p))))
        (f64.promote_f32 (f32.load offset=4 (local.get $q)))))
      (local.set $top (f64x2.add (local.get $s00) (f64x2.mul (local.get $ex) (f64x2.sub (local.get $s01) (local.get $s00)))))
      (local.set $bottom (f64x2.add (local.get $s10) (f64x2.mul (local.get $ex) (f64x2.sub (local.get $s11) (local.get $s10)))))
      (local.set $value (f32x4.demote_f64x2_zero
        (f64x2.add (f64x2.splat (local.get $lift))
          (f64x2.mul (f64x2.splat (local.get $gain))
            (f64x2.add (local.get $top)
              (f64x2.mul (f64x2.sub (local.get $fy) (f64x2.convert_low_i32x4_s (local.get $iy)))
                (f64x2.sub (local.get $bottom) (local.get $top))))))))
      ;; The lanes' lung-mask pixels.
      (local.set $cell (i32x4.add
        (i32x4.mul
          (i32x4.trunc_sat_f64x2_s_zero (f64x2.mul (f64x2.add (local.get $fy) (f64x2.splat (f64.const 0.5))) (f64x2.splat (local.get $to_mask))))
          (i32x4.splat (global.get $w_mask_side)))
        (i32x4.trunc_sat_f64x2_s_zero (f64x2.mul (f64x2.add (local.get $fx) (f64x2.splat (f64.const 0.5))) (f64x2.splat (local.get $to_mask))))))
      (local.set $at (i32.add (local.get $o) (local.get $px)))
      (local.set $lanes (select (i32.const 2) (i32.const 1)
        (i32.lt_u (i32.add (local.get $px) (i32.const 1)) (global.get $w_size))))
      (if (i32.eq (local.get $lanes) (i32.const 2))
        (then (v128.store64_lane 0 (i32.add (global.get $w_out) (i32.shl (local.get $at) (i32.const 2))) (local.get $value)))
        (else (f32.store (i32.add (global.get $w_out) (i32.shl (local.get $at) (i32.const 2))) (f32x4.extract_lane 0 (local.get $value)))))
      (local.set $l (i32.const 0))
      (loop $lane
        (local.set $lung (i32.load8_u (i32.add (global.get $w_mask)
          (select (i32x4.extract_lane 1 (local.get $cell)) (i32x4.extract_lane 0 (local.get $cell)) (local.get $l)))))
        (i32.store8 (i32.add (global.get $w_lungs) (i32.add (local.get $at) (local.get $l))) (local.get $lung))
        (if (i32.eq (local.get $lung) (i32.const 1))
          (then
            (if (i32.lt_s (local.get $r0) (i32.const 0)) (then (local.set $r0 (i32.add (local.get $px) (local.get $l)))))
            (local.set $r1 (i32.add (local.get $px) (local.get $l))))
          (else
            (if (i32.eq (local.get $lung) (i32.const 2))
              (then
                (if (i32.lt_s (local.get $l0) (i32.const 0)) (then (local.set $l0 (i32.add (local.get $px) (local.get $l)))))
                (local.set $l1 (i32.add (local.get $px) (local.get $l)))))))
        (br_if $lane (i32.lt_u (local.tee $l (i32.add (local.get $l) (i32.const 1))) (local.get $lanes))))
      (br_if $pairs (i32.lt_u (local.tee $px (i32.add (local.get $px) (i32.const 2))) (global.get $w_size))))
    ;; Each lung as one run per row, when the patient's right lung lies on the viewer's left of the left one.
    (local.set $at (i32.add (global.get $w_spans) (i32.shl (local.get $py) (i32.const 4))))
    (if (i32.and (i32.ge_s (local.get $r0) (i32.const 0))
          (i32.or (i32.lt_s (local.get $l0) (i32.const 0)) (i32.lt_s (local.get $r1) (local.get $l0))))
      (then
        (i32.store (local.get $at) (local.get $r0))
        (i32.store offset=4 (local.get $at) (i32.add (local.get $r1) (i32.const 1)))))
    (if (i32.and (i32.ge_s (local.get $l0) (i32.const 0))
          (i32.or (i32.lt_s (local.get $r0) (i32.const 0)) (i32.lt_s (local.get $r1) (local.get $l0))))
      (then
        (i32.store offset=8 (local.get $at) (local.get $l0))
        (i32.store offset=12 (local.get $at) (i32.add (local.get $l1) (i32.const 1))))))

  ;; --- The density: upsampled (from the half-size drawing), clamped to [0, 1], averaged per cell.

  ;; Each half-size row upsampled 2× across into $across: output pixel 2x is ¾ of source x and ¼
  ;; of x − 1, pixel 2x + 1 ¾ of x and ¼ of x + 1 (edges repeated), in doubles, stored as float32.
  (func $upsample_across
    (local $h i32) (local $y i32) (local $x i32) (local $row i32) (local $out i32)
    (local $v f64) (local $left f64) (local $right f64)
    (local.set $h (i32.shr_u (global.get $size) (i32.const 1)))
    (loop $rows
      (local.set $row (i32.add (global.get $half) (i32.shl (i32.mul (local.get $y) (local.get $h)) (i32.const 2))))
      (local.set $out (i32.add (global.get $across) (i32.shl (i32.mul (local.get $y) (global.get $size)) (i32.const 2))))
      (local.set $x (i32.const 0))
      (loop $columns
        (local.set $v (f64.mul (f64.const 0.75)
          (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2)))))))
        (local.set $left (f64.promote_f32 (f32.load (i32.add (local.get $row)
          (i32.shl (select (i32.sub (local.get $x) (i32.const 1)) (i32.const 0) (i32.gt_s (local.get $x) (i32.const 0)))
            (i32.const 2))))))
        (local.set $right (f64.promote_f32 (f32.load (i32.add (local.get $row)
          (i32.shl
            (select (i32.add (local.get $x) (i32.const 1)) (local.get $x)
              (i32.lt_s (local.get $x) (i32.sub (local.get $h) (i32.const 1))))
            (i32.const 2))))))
        (f32.store (local.get $out) (f32.demote_f64 (f64.add (local.get $v) (f64.mul (f64.const 0.25) (local.get $left)))))
        (f32.store offset=4 (local.get $out)
          (f32.demote_f64 (f64.add (local.get $v) (f64.mul (f64.const 0.25) (local.get $right)))))
        (local.set $out (i32.add (local.get $out) (i32.const 8)))
        (br_if $columns (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 1))) (local.get $h))))
      (br_if $rows (i32.lt_u (local.tee $y (i32.add (local.get $y) (i32.const 1))) (local.get $h)))))

  ;; Density row y made final: with from_half, upsampled down from the rows upsampled across (¾
  ;; of across row y/2 and ¼ of the row above it for y even, below it for y odd, edges repeated;
  ;; in doubles, rounded to float32 as a Float32Array store would), else as drawn; then clamped in
  ;; place as `v > 0 && v < 1 ? v : v > 0 ? 1 : 0` (NaN → 0), each pixel added to its column's
  ;; sum. Two pixels at a time; an odd size (never drawn at half size) ends with one alone. (The
  ;; clamp is written out, not called: V8 does not inline WebAssembly calls, and a call per pixel
  ;; pair costs more than its arithmetic.)
  (func $finish_row (param $y i32) (param $from_half i32)
    (local $row i32) (local $near i32) (local $far i32) (local $hy i32) (local $h i32)
    (local $x i32) (local $pairs_end i32) (local $v v128) (local $above v128) (local $s f64) (local $at i32)
    (local.set $row (i32.add (global.get $density) (i32.shl (i32.mul (local.get $y) (global.get $size)) (i32.const 2))))
    (if (local.get $from_half)
      (then
        (local.set $h (i32.shr_u (global.get $size) (i32.const 1)))
        (local.set $hy (i32.shr_u (local.get $y) (i32.const 1)))
        (local.set $near (i32.add (global.get $across) (i32.shl (i32.mul (local.get $hy) (global.get $size)) (i32.const 2))))
        (if (i32.and (local.get $y) (i32.const 1))
          (then
            (if (i32.lt_u (local.get $hy) (i32.sub (local.get $h) (i32.const 1)))
              (then (local.set $hy (i32.add (local.get $hy) (i32.const 1))))))
          (else
            (if (i32.gt_u (local.get $hy) (i32.const 0))
              (then (local.set $hy (i32.sub (local.get $hy) (i32.const 1)))))))
        (local.set $far (i32.add (global.get $across) (i32.shl (i32.mul (local.get $hy) (global.get $size)) (i32.const 2))))))
    (local.set $pairs_end (i32.and (global.get $size) (i32.const -2)))
    (block $done
      (br_if $done (i32.eqz (local.get $pairs_end)))
      (loop $pairs
        (if (local.get $from_half)
          (then
            (local.set $v
              (f64x2.promote_low_f32x4 (f32x4.demote_f64x2_zero
                (f64x2.add
                  (f64x2.mul (f64x2.splat (f64.const 0.75))
                    (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $near) (i32.shl (local.get $x) (i32.const 2))))))
                  (f64x2.mul (f64x2.splat (f64.const 0.25))
                    (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $far) (i32.shl (local.get $x) (i32.const 2)))))))))))
          (else
            (local.set $v (f64x2.promote_low_f32x4
              (v128.load64_zero (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2))))))))
        (local.set $above (f64x2.gt (local.get $v) (f64x2.splat (f64.const 0))))
        (local.set $v (v128.bitselect
          (local.get $v)
          (v128.and (local.get $above) (f64x2.splat (f64.const 1)))
          (v128.and (local.get $above) (f64x2.lt (local.get $v) (f64x2.splat (f64.const 1))))))
        (v128.store64_lane 0 (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2))) (f32x4.demote_f64x2_zero (local.get $v)))
        (local.set $at (i32.add (global.get $col_sum) (i32.shl (local.get $x) (i32.const 3))))
        (v128.store (local.get $at) (f64x2.add (v128.load (local.get $at)) (local.get $v)))
        (br_if $pairs (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 2))) (local.get $pairs_end)))))
    (if (i32.lt_u (local.get $x) (global.get $size))
      (then
        (local.set $s (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2))))))
        (local.set $s
          (select (local.get $s)
            (select (f64.const 1) (f64.const 0) (f64.gt (local.get $s) (f64.const 0)))
            (i32.and (f64.gt (local.get $s) (f64.const 0)) (f64.lt (local.get $s) (f64.const 1)))))
        (f32.store (i32.add (local.get $row) (i32.shl (local.get $x) (i32.const 2))) (f32.demote_f64 (local.get $s)))
        (local.set $at (i32.add (global.get $col_sum) (i32.shl (local.get $x) (i32.const 3))))
        (f64.store (local.get $at) (f64.add (f64.load (local.get $at)) (local.get $s))))))

  ;; The density clamped to [0, 1] and its cell means into $grid; with from_half, the density is
  ;; first upsampled from the half-size drawing (size even).
  (func $clamp_into_grid (export "clamp_into_grid") (param $from_half i32)
    (local $y i32) (local $inv f64)
    (local.set $inv (f64.div (f64.const 1)
      (f64.convert_i32_u (i32.mul (global.get $f) (global.get $f)))))
    (memory.fill (global.get $col_sum) (i32.const 0) (i32.shl (global.get $size) (i32.const 3)))
    (if (local.get $from_half) (then (call $upsample_across)))
    (loop $rows
      (call $finish_row (local.get $y) (local.get $from_half))
      (call $end_row (local.get $y) (global.get $grid) (local.get $inv))
      (br_if $rows (i32.lt_u (local.tee $y (i32.add (local.get $y) (i32.const 1))) (global.get $size)))))

  ;; --- The stored pixels and the noise.

  ;; A pass of $draw_row from its first row: the noise stream from the 16 seed words (lane l's a,
  ;; b, c, d at words l, 4 + l, 8 + l, 12 + l), the column sums cleared.
  (func $start_stream (export "start_stream")
    (memory.fill (global.get $col_sum) (i32.const 0) (i32.shl (global.get $size) (i32.const 3)))
    (global.set $a (v128.load (global.get $seed)))
    (global.set $b (v128.load offset=16 (global.get $seed)))
    (global.set $c (v128.load offset=32 (global.get $seed)))
    (global.set $d (v128.load offset=48 (global.get $seed))))

  (func $set_acquisition (export "set_acquisition") (param $gain f64) (param $step f64) (param $rounded f64) (param $max f64)
    (global.set $gain (local.get $gain))
    (global.set $step (local.get $step))
    (global.set $rounded (local.get $rounded))
    (global.set $max (local.get $max)))

  ;; Row y of the stream: each lane draws its next value t, u = the sum of t's three 10-bit fields.
  ;; With pixels, row y's stored values into $pixels and each added to its column's sum; without,
  ;; the draws u added instead. The row's shift is varying[x] + per_row (the part that varies
  ;; along the row at $varying, then the row's constant, as components.ts `rowShift` adds them),
  ;; 0 on the kept runs [k0, k1) and [k2, k3).
  ;; A row not a multiple of 4 ends with a group whose lanes past the row neither advance their
  ;; generator nor write (their values go through $scratch).
  (func $draw_row (param $y i32) (param $with_pixels i32) (param $varying i32) (param $per_row f64)
    (param $k0 i32) (param $k1 i32) (param $k2 i32) (param $k3 i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $t v128) (local $keep v128)
    (local $u v128) (local $value v128) (local $lo v128) (local $hi v128) (local $kept v128) (local $lanes v128)
    (local $x i32) (local $o i32) (local $rest i32) (local $l i32) (local $at i32)
    (local.set $a (global.get $a))
    (local.set $b (global.get $b))
    (local.set $c (global.get $c))
    (local.set $d (global.get $d))
    (local.set $o (i32.mul (local.get $y) (global.get $size)))
    (loop $groups
      ;; sfc32: t = a + b + d; a = b ^ (b >>> 9); b = c + (c << 3); c = rotl(c, 21) + t; d = d + 1.
      (local.set $t (i32x4.add (i32x4.add (local.get $a) (local.get $b)) (local.get $d)))
      (local.set $rest (i32.sub (global.get $size) (local.get $x)))
      ;; All ones in the lanes that hold a pixel of this row.
      (local.set $keep (i32x4.lt_s (v128.const i32x4 0 1 2 3) (i32x4.splat (local.get $rest))))
      (local.set $a (v128.bitselect
        (v128.xor (local.get $b) (i32x4.shr_u (local.get $b) (i32.const 9))) (local.get $a) (local.get $keep)))
      (local.set $b (v128.bitselect
        (i32x4.add (local.get $c) (i32x4.shl (local.get $c) (i32.const 3))) (local.get $b) (local.get $keep)))
      (local.set $c (v128.bitselect
        (i32x4.add
          (v128.or (i32x4.shl (local.get $c) (i32.const 21)) (i32x4.shr_u (local.get $c) (i32.const 11)))
          (local.get $t))
        (local.get $c) (local.get $keep)))
      (local.set $d (v128.bitselect
        (i32x4.add (local.get $d) (i32x4.splat (i32.const 1))) (local.get $d) (local.get $keep)))
      (local.set $u
        (i32x4.add
          (i32x4.add
            (v128.and (local.get $t) (i32x4.splat (i32.const 1023)))
            (v128.and (i32x4.shr_u (local.get $t) (i32.const 10)) (i32x4.splat (i32.const 1023))))
          (v128.and (i32x4.shr_u (local.get $t) (i32.const 20)) (i32x4.splat (i32.const 1023)))))
      ;; The four values (stored pixels or draws) as doubles: $lo lanes 0–1, $hi lanes 2–3.
      (if (local.get $with_pixels)
        (then
          (local.set $at (i32.add (global.get $density) (i32.shl (i32.add (local.get $o) (local.get $x)) (i32.const 2))))
          (local.set $value (v128.load (local.get $at)))
          (local.set $at (i32.add (local.get $varying) (i32.shl (local.get $x) (i32.const 3))))
          ;; All ones in the lanes on a kept run (their shift is 0).
          (local.set $lanes (i32x4.add (i32x4.splat (local.get $x)) (v128.const i32x4 0 1 2 3)))
          (local.set $kept (v128.or
            (v128.and (i32x4.ge_s (local.get $lanes) (i32x4.splat (local.get $k0))) (i32x4.lt_s (local.get $lanes) (i32x4.splat (local.get $k1))))
            (v128.and (i32x4.ge_s (local.get $lanes) (i32x4.splat (local.get $k2))) (i32x4.lt_s (local.get $lanes) (i32x4.splat (local.get $k3))))))
          ;; Stored value: base + round(gain·clamp(density + shift, 0, 1) + u·step), clamped to
          ;; [0, max], as `g < 0 ? 0 : g > gain ? gain : g` then `v < 0 ? 0 : v > max ? max : v`
          ;; (pmax(g, 0) is `g < 0 ? 0 : g`, pmin(g, gain) is `gain < g ? gain : g`); the rounding
          ;; adds and takes off 1.5·2⁵² (to an integer, ties to even). Lanes 0–1, then 2–3.
          (local.set $lo (f64x2.mul (f64x2.splat (global.get $gain))
            (f64x2.add (f64x2.promote_low_f32x4 (local.get $value))
              (v128.andnot (f64x2.add (v128.load (local.get $at)) (f64x2.splat (local.get $per_row)))
                (i64x2.extend_low_i32x4_s (local.get $kept))))))
          (local.set $hi (f64x2.mul (f64x2.splat (global.get $gain))
            (f64x2.add
              (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $value) (local.get $value)))
              (v128.andnot (f64x2.add (v128.load offset=16 (local.get $at)) (f64x2.splat (local.get $per_row)))
                (i64x2.extend_high_i32x4_s (local.get $kept))))))
          (local.set $lo (f64x2.pmin (f64x2.pmax (local.get $lo) (f64x2.splat (f64.const 0))) (f64x2.splat (global.get $gain))))
          (local.set $hi (f64x2.pmin (f64x2.pmax (local.get $hi) (f64x2.splat (f64.const 0))) (f64x2.splat (global.get $gain))))
          (local.set $lo
            (f64x2.sub
              (f64x2.add
                (f64x2.add (local.get $lo) (f64x2.mul (f64x2.convert_low_i32x4_s (local.get $u)) (f64x2.splat (global.get $step))))
                (f64x2.splat (global.get $rounded)))
              (f64x2.splat (f64.const 6755399441055744))))
          (local.set $hi
            (f64x2.sub
              (f64x2.add
                (f64x2.add (local.get $hi)
                  (f64x2.mul
                    (f64x2.convert_low_i32x4_s (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $u) (local.get $u)))
                    (f64x2.splat (global.get $step))))
                (f64x2.splat (global.get $rounded)))
              (f64x2.splat (f64.const 6755399441055744))))
          (local.set $lo (f64x2.pmin (f64x2.pmax (local.get $lo) (f64x2.splat (f64.const 0))) (f64x2.splat (global.get $max))))
          (local.set $hi (f64x2.pmin (f64x2.pmax (local.get $hi) (f64x2.splat (f64.const 0))) (f64x2.splat (global.get $max))))
          ;; As integers (exact: whole numbers in [0, max]).
          (local.set $value (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            (i32x4.trunc_sat_f64x2_s_zero (local.get $lo))
            (i32x4.trunc_sat_f64x2_s_zero (local.get $hi)))))
        (else
          (local.set $value (local.get $u))
          (local.set $lo (f64x2.convert_low_i32x4_s (local.get $u)))
          (local.set $hi (f64x2.convert_low_i32x4_s
            (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $u) (local.get $u))))))
      (if (i32.ge_s (local.get $rest) (i32.const 4))
        (then
          (if (local.get $with_pixels)
            (then
              (v128.store64_lane 0
                (i32.add (global.get $pixels) (i32.shl (i32.add (local.get $o) (local.get $x)) (i32.const 1)))
                (i16x8.narrow_i32x4_u (local.get $value) (local.get $value)))))
          (local.set $at (i32.add (global.get $col_sum) (i32.shl (local.get $x) (i32.const 3))))
          (v128.store (local.get $at) (f64x2.add (v128.load (local.get $at)) (local.get $lo)))
          (v128.store offset=16 (local.get $at) (f64x2.add (v128.load offset=16 (local.get $at)) (local.get $hi))))
        (else
          ;; The row's last 1–3 pixels, one by one.
          (v128.store (global.get $scratch) (local.get $value))
          (local.set $l (i32.const 0))
          (loop $last
            (if (local.get $with_pixels)
              (then
                (i32.store16
                  (i32.add (global.get $pixels)
                    (i32.shl (i32.add (local.get $o) (i32.add (local.get $x) (local.get $l))) (i32.const 1)))
                  (i32.load (i32.add (global.get $scratch) (i32.shl (local.get $l) (i32.const 2)))))))
            (local.set $at (i32.add (global.get $col_sum) (i32.shl (i32.add (local.get $x) (local.get $l)) (i32.const 3))))
            (f64.store (local.get $at)
              (f64.add (f64.load (local.get $at))
                (f64.convert_i32_s (i32.load (i32.add (global.get $scratch) (i32.shl (local.get $l) (i32.const 2)))))))
            (br_if $last (i32.lt_u (local.tee $l (i32.add (local.get $l) (i32.const 1))) (local.get $rest))))))
      (br_if $groups (i32.lt_u (local.tee $x (i32.add (local.get $x) (i32.const 4))) (global.get $size))))
    (global.set $a (local.get $a))
    (global.set $b (local.get $b))
    (global.set $c (local.get $c))
    (global.set $d (local.get $d)))

  ;; Pixel row y ($draw_row, its shift's varying part at row `varying_row` of $shift); when it
  ;; completes a grid row, that row's cell sums into $cells.
  (func $draw_pixel_row (export "draw_pixel_row") (param $y i32) (param $with_pixels i32) (param $varying_row i32)
    (param $per_row f64) (param $k0 i32) (param $k1 i32) (param $k2 i32) (param $k3 i32)
    (call $draw_row (local.get $y) (local.get $with_pixels)
      (i32.add (global.get $shift) (i32.shl (i32.mul (local.get $varying_row) (global.get $size)) (i32.const 3)))
      (local.get $per_row) (local.get $k0) (local.get $k1) (local.get $k2) (local.get $k3))
    (call $end_row (local.get $y) (global.get $cells) (f64.const 1))))
