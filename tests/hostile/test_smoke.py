from tests.hostile.conftest import Site, vm_status


def test_both_processes_answer(site: Site) -> None:
    site.assert_web_alive()
    site.assert_receiver_alive()
    print(vm_status(site.web.pid), vm_status(site.receiver.pid))
