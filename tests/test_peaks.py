"""The CPU's FP32 peak counts physical cores: hyperthreads share a core's FMA units."""
from bench import peaks


def _sysfs(root, layout):
    """layout: logical cpu -> (socket, core)."""
    for cpu, (socket, core) in layout.items():
        top = root / f"cpu{cpu}" / "topology"
        top.mkdir(parents=True)
        (top / "physical_package_id").write_text(f"{socket}\n")
        (top / "core_id").write_text(f"{core}\n")


def test_hyperthreads_of_one_core_count_once(tmp_path):
    _sysfs(tmp_path, {0: (0, 0), 1: (0, 1), 2: (0, 0), 3: (0, 1), 4: (1, 0), 5: (1, 0)})
    assert peaks.physical_cores([0, 1, 2, 3], tmp_path) == 2
    assert peaks.physical_cores([0, 4], tmp_path) == 2  # core 0 of two sockets: two cores
    assert peaks.physical_cores([4, 5], tmp_path) == 1


def test_an_unknown_topology_is_none(tmp_path):
    _sysfs(tmp_path, {0: (0, 0)})
    assert peaks.physical_cores([0, 1], tmp_path) is None
    assert peaks.physical_cores([], tmp_path) is None


def test_the_peak_scales_with_physical_cores(monkeypatch):
    monkeypatch.setattr(peaks, "cpu_info", lambda: ({"avx512f"}, 2000.0))
    monkeypatch.setattr(peaks, "physical_cores", lambda cpus: len(cpus) // 2)
    out = peaks.cpu_peak(list(range(8)))
    assert out["physical_cores"] == 4
    assert out["peak_fp32_flops"] == 4 * 2000e6 * 64
    assert out["basis"].startswith("4 physical cores")
    monkeypatch.setattr(peaks, "physical_cores", lambda cpus: None)
    assert peaks.cpu_peak(list(range(8)))["peak_fp32_flops"] == 8 * 2000e6 * 64
