"""Loaders of real rPPG datasets, one module each, registered with ``@register_dataset``.

=============  ==================  ===============================================================
name           module              label clock used to align the PPG with the frames
=============  ==================  ===============================================================
``ubfc_rppg``  :mod:`.ubfc_rppg`   DATASET_2 ``ground_truth.txt`` row 3 / DATASET_1 ``gtdump.xmp``
                                   timestamps
``pure``       :mod:`.pure`        JSON sample timestamps vs PNG frame timestamps (Unix ns)
``ubfc_phys``  :mod:`.ubfc_phys`   stated E4 BVP rate (64 Hz)
``mmpd``       :mod:`.mmpd`        none given → index stretch (toolbox); documented limitation
``scamps``     :mod:`.scamps`      frame-aligned by construction (lengths must match)
``ibvp``       :mod:`.ibvp`        stated 30 Hz; signal-quality column in meta (keep / drop)
``cohface``    :mod:`.cohface`     ``data.hdf5`` ``time`` dataset (else stated 256 Hz)
``folder``     :mod:`.folder`      your recordings: CSV ``time`` column or a configured ``ppg_fs``
=============  ==================  ===============================================================

Loaders are found by :func:`protocols.base.create_dataset`, which imports every module of this
package; shared helpers (frame sources, label alignment, readers, :class:`FileLoader`) live in
:mod:`._common`. Each loader takes ``root`` plus options; a missing root, a root without
recognisable records and every malformed file raise :class:`~protocols.base.DatasetFormatError`
naming the path.
"""
