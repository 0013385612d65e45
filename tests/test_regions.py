import pytest

from gpubroker import regions


@pytest.mark.parametrize(
    ("place", "country", "continent"),
    [
        ("Texas, US", "US", "NA"),
        ("Quebec, CA", "CA", "NA"),
        ("Norway", "NO", "EU"),
        ("Czechia, CZ", "CZ", "EU"),
        ("us-east-1", "US", "NA"),
        ("Guangdong, CN", "CN", "AS"),
        ("Atlantis", None, None),
        (None, None, None),
    ],
)
def test_places_map_to_country_and_continent(place, country, continent):
    assert regions.from_place(place) == regions.Location(country, continent)


def test_every_country_has_a_continent():
    assert all(len(cc) == 2 and cc.isupper() for cc in regions.CONTINENT_OF)
    assert set(regions.CONTINENT_OF.values()) == {"NA", "SA", "EU", "AS", "OC", "AF"}
